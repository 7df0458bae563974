"""Hourly caps per client address on what lands in the agents' inbox: new conversations and hand-offs.

The request rate limit (bot/infra/guards.py) stops floods of requests; these stop a slow trickle that would
still fill the inbox. Counted with the `limits` library, in memory or in Redis so that replicas share the
counts. When the store fails the caps fail open (a visitor is never refused because Redis is down) and the
failure is logged and counted."""

from __future__ import annotations

import enum
import logging

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from bot.infra import telemetry
from bot.infra.guards import rate_is_off

log = logging.getLogger("distilbot.caps")


class Cap(enum.StrEnum):
    NEW_CONVERSATION = "new_conversation"
    HANDOFF = "handoff"


class ClientCaps:
    def __init__(self, new_conversations: str, handoffs: str, redis_url: str | None = None):
        rates = {Cap.NEW_CONVERSATION: new_conversations, Cap.HANDOFF: handoffs}
        self.rates = {cap: parse(rate) for cap, rate in rates.items() if not rate_is_off(rate)}
        options = {"socket_connect_timeout": 1, "socket_timeout": 1} if redis_url else {}
        self.limiter = MovingWindowRateLimiter(storage_from_string(redis_url or "memory://", **options))

    def allow(self, cap: Cap, client: str | None) -> bool:
        """Count one `cap` event for `client`; False once its hourly allowance is spent (nothing is counted
        for an unknown client address, which only in-process test clients have)."""
        rate = self.rates.get(cap)
        if rate is None or not client:
            return True
        try:
            allowed = self.limiter.hit(rate, "client-cap", cap.value, client)
        except Exception:  # the shared store is down: serve on, say so
            log.warning("client cap store unreachable; %s not capped", cap.value, exc_info=True)
            telemetry.CAP_STORE_ERRORS.inc()
            return True
        if not allowed:
            telemetry.CAPPED.labels(cap.value).inc()
        return allowed
