"""Limits on what one client can send: request size (413) and request rate (429 with Retry-After).

Plain ASGI middleware, so they act before a route runs. Rates count per client address with the
`limits` library: in memory, or in Redis so that all replicas share the count (falling back to memory, or
to 503, while Redis cannot be reached)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from bot.infra import telemetry

LIMITED_PREFIXES = ("/api/", "/webhooks/")


def rate_is_off(rate: str) -> bool:
    """A limit written as '', '0', 'off' or 'none' in the settings is no limit."""
    return rate.strip().lower() in ("", "0", "off", "none")

IPV6_PREFIX = 64


def client_key(host: str | None) -> str:
    """What every per-client limit counts by: the client's address, or for IPv6 its /64 network (one
    subscriber is routinely given a whole /64, so counting single addresses would let them rotate freely)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # e.g. "testclient", an in-process test client's name
        return host
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))


CLIENT_HASH_PREFIX = b"distilbot client v1\0"


def client_hash(address: str | None) -> str | None:
    """What the store keeps of a client's address: SHA-256 of its `client_key` (so an IPv6 client is its /64;
    an address already made a key stays the same) under a fixed prefix, 32 hex digits. The conversations table
    thus never holds raw addresses, yet the harvest can count per client. The settings have no server-side
    secret to key it with (the identity secret is shared with the shop and optional), so this is
    pseudonymisation, not anonymity: someone holding the table could still test guessed addresses. None when
    the address is unknown."""
    key = client_key(address)
    if key == "unknown":
        return None
    return hashlib.sha256(CLIENT_HASH_PREFIX + key.encode()).hexdigest()[:32]


async def _send_error(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """413 for a body over `max_bytes`: refused unread when its declared length is over, else read up to
    the limit first (a streamed body has no length to check) and handed on only if it stays under."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body over {self.max_bytes} bytes"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit():
            if int(declared) > self.max_bytes:
                return await _send_error(send, 413, too_large)
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await _send_error(send, 413, too_large)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _limits_storage(redis_url: str | None, max_connections: int):
    """In memory, or in Redis through a bounded pool whose calls give up after a second (so an unreachable
    Redis costs a request little before the limiter falls back)."""
    if not redis_url:
        return storage_from_string("async+memory://")
    from redis import asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=max_connections, timeout=1,
                                                    socket_connect_timeout=1, socket_timeout=1)
    # limits types **options as scalars, but its Redis storages take (and document) a connection_pool
    return storage_from_string("async+" + redis_url, implementation="redispy", wrap_exceptions=True,
                               connection_pool=pool)  # type: ignore[arg-type]


class RateLimit:
    """429 with Retry-After once a client address exceeds any of the configured rates.

    With Redis (one budget for all replicas) that cannot be reached, `fail_open` decides: count in this
    process's memory for the next REDIS_RETRY_S (each replica then limits on its own), or refuse limited
    requests with 503. Either way a warning is logged and distilbot_rate_limit_redis_errors_total counts
    each such request."""

    REDIS_RETRY_S = 5.0

    def __init__(self, app, rates: str, redis_url: str | None = None, fail_open: bool = True,
                 max_connections: int = 20):
        self.app = app
        self.rates = [] if rate_is_off(rates) else parse_many(rates)
        self.limiter = SlidingWindowCounterRateLimiter(_limits_storage(redis_url, max_connections))
        self.fallback = SlidingWindowCounterRateLimiter(storage_from_string("async+memory://"))
        self.fail_open = fail_open
        self.redis_retry_at = 0.0  # monotonic time before which Redis is not tried again

    async def _refusal(self, limiter, client: str) -> RateLimitItem | None:
        """The rate `client` is over, counting this request, or None."""
        for rate in self.rates:
            if not await limiter.hit(rate, "client", client):
                return rate
        return None

    async def _check(self, client: str):
        """(the rate exceeded or None, the limiter that counted), or None when nothing could count it."""
        if time.monotonic() >= self.redis_retry_at:
            try:
                return await self._refusal(self.limiter, client), self.limiter
            except StorageError as exc:
                self.redis_retry_at = time.monotonic() + self.REDIS_RETRY_S
                telemetry.log.warning("rate limit: Redis unreachable (%s); %s for %.0f s", exc.storage_error,
                                      "counting in memory" if self.fail_open else "refusing limited requests",
                                      self.REDIS_RETRY_S)
        telemetry.RATE_LIMIT_REDIS_ERRORS.labels("open" if self.fail_open else "closed").inc()
        if not self.fail_open:
            return None
        return await self._refusal(self.fallback, client), self.fallback

    async def __call__(self, scope, receive, send):
        if not self.rates or scope["type"] != "http" or not scope["path"].startswith(LIMITED_PREFIXES):
            return await self.app(scope, receive, send)
        client = client_key((scope.get("client") or (None,))[0])
        checked = await self._check(client)
        if checked is None:
            return await _send_error(send, 503, "rate limiting is unavailable (its Redis cannot be reached); "
                                                f"retry in {self.REDIS_RETRY_S:.0f} s",
                                     {"Retry-After": str(math.ceil(self.REDIS_RETRY_S))})
        rate, limiter = checked
        if rate is not None:
            try:
                stats = await limiter.get_window_stats(rate, "client", client)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
            except StorageError:  # Redis went away since the hit
                retry = 1
            return await _send_error(send, 429, f"too many requests: the limit is {rate}; retry in {retry} s",
                                     {"Retry-After": str(retry)})
        await self.app(scope, receive, send)
