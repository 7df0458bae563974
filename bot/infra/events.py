"""Live events (new messages, typing, status changes) from whoever causes them to every open WebSocket.

In-process by default; through Redis pub/sub when a Redis URL is set, so that a visitor connected to one
API replica sees what an agent on another replica does. Channels:

    conversation.<id>   what the visitor of that conversation sees
    desk                what every agent's console sees (all conversations)
    agents              agents' tokens revoked: sockets opened with them are closed (contract below)

Contract for revoking an agent's tokens (logout, password change, `bot agent disable`): once the token
rows are deleted and committed, call

    await publish_revocation(bus, agent_id, token_hash=None)

which publishes on the AGENTS channel

    {"type": "tokens_revoked", "agent_id": <int>, "token_hash": <sha256 hex of one token, or null: all of them>}

Every replica then closes that agent's matching WebSockets with close code 4401 (see bot/api/sockets.py). The
event is best effort like every other: a replica that misses it (Redis down) still closes those sockets
at its next periodic token check (DISTILBOT_SOCKET_RECHECK_S).

With Redis, a process holds one subscription (one connection, pattern-subscribed to its prefix) and fans
its messages out in memory to the local subscribers, rather than a Redis connection per socket; its
connection pool is bounded. Publishing never fails the caller: while Redis cannot be reached, an event
reaches this process's own subscribers only and is counted in distilbot_events_dropped_total.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from pydantic import BaseModel, Field

from bot.infra import telemetry

DESK = "desk"
AGENTS = "agents"
TOKENS_REVOKED: Final = "tokens_revoked"


class TokensRevoked(BaseModel):
    """The AGENTS channel's event: these tokens of the agent no longer open anything."""

    type: Literal["tokens_revoked"] = TOKENS_REVOKED
    agent_id: int
    token_hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$",
                                   description="SHA-256 hex of the one token revoked; null: all the agent's tokens")


@dataclass(frozen=True)
class Event:
    """A live event and the channels it goes to; published only once the transaction that caused it committed."""

    channels: tuple[str, ...]
    payload: dict


def conversation_channel(conversation_id: str) -> str:
    return f"conversation.{conversation_id}"


async def publish_revocation(bus: EventBus, agent_id: int, token_hash: str | None = None) -> bool:
    """Tell every replica to close the agent's sockets opened with `token_hash` (None: with any token).
    False when only this process could be told (Redis unreachable)."""
    return await bus.publish(AGENTS, TokensRevoked(agent_id=agent_id, token_hash=token_hash).model_dump())


class EventBus(Protocol):
    async def publish(self, channel: str, event: dict) -> bool:
        """Best effort: never raises for an unreachable broker; False when the event reached only this
        process's subscribers (it is then counted as dropped)."""

    async def publish_all(self, events: list[Event]) -> bool:
        """Every event on each of its channels, in order, at once (one round trip to a broker); best effort
        as `publish`."""

    def subscribe(self, *channels: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict]]:
        """Events published on `channels` from the moment this context is entered."""

    async def ping(self) -> None:
        """Raises when the broker cannot be reached (for /ready)."""

    async def close(self) -> None: ...


class Fanout:
    """This process's subscribers, a bounded queue each. A subscriber too slow to keep `backlog` events
    behind loses the oldest ones rather than holding up the publisher."""

    def __init__(self, backlog: int = 1000):
        self.backlog = backlog
        self.queues: dict[str, set[asyncio.Queue]] = {}

    def deliver(self, channel: str, event: dict) -> None:
        for queue in list(self.queues.get(channel, ())):
            if queue.full():
                queue.get_nowait()
                telemetry.EVENTS_DROPPED.labels("slow_subscriber").inc()
            queue.put_nowait(event)

    def subscribers(self, channel: str) -> int:
        return len(self.queues.get(channel, ()))

    @contextlib.contextmanager
    def subscription(self, channels: tuple[str, ...]) -> Iterator[AsyncIterator[dict]]:
        queue: asyncio.Queue = asyncio.Queue(self.backlog)
        for channel in channels:
            self.queues.setdefault(channel, set()).add(queue)
        try:
            yield _drain(queue)
        finally:
            for channel in channels:
                self.queues[channel].discard(queue)
                if not self.queues[channel]:
                    del self.queues[channel]


async def _drain(queue: asyncio.Queue) -> AsyncIterator[dict]:
    while True:
        yield await queue.get()


class InProcessBus:
    """One process, no dependencies."""

    def __init__(self, backlog: int = 1000):
        self.local = Fanout(backlog)

    async def publish(self, channel: str, event: dict) -> bool:
        self.local.deliver(channel, event)
        return True

    async def publish_all(self, events: list[Event]) -> bool:
        for event in events:
            for channel in event.channels:
                self.local.deliver(channel, event.payload)
        return True

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str):
        with self.local.subscription(channels) as events:
            yield events

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self.local.queues.clear()


class RedisBus:
    """Redis pub/sub: every replica publishes to and listens on the same Redis. Channels are prefixed so
    several deployments can share one Redis. One background task holds this process's only subscription
    (PSUBSCRIBE <prefix>*) and reconnects, every RETRY_S, after Redis went away."""

    RETRY_S = 1.0
    POLL_S = 1.0  # how often the listener wakes to check the connection's health
    TIMEOUT_S = 2.0  # connecting, reading a reply, waiting for a free pooled connection

    def __init__(self, url: str, prefix: str = "distilbot:", max_connections: int = 20, backlog: int = 1000):
        from redis import asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # Options in the URL (e.g. ?socket_timeout=5) win over these defaults.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=self.TIMEOUT_S, decode_responses=True,
            socket_connect_timeout=self.TIMEOUT_S, socket_timeout=self.TIMEOUT_S, health_check_interval=10,
            retry=Retry(NoBackoff(), 1), client_name=f"{prefix}events")
        self.redis = aioredis.Redis.from_pool(pool)
        self.prefix = prefix
        self.local = Fanout(backlog)
        self.available: bool | None = None
        """Whether the subscription is up; None until the first attempt ended."""
        self._settled = asyncio.Event()
        self._listener: asyncio.Task | None = None

    def _start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="redis-bus-listener")

    def _set_available(self, available: bool, why: Exception | None = None) -> None:
        if available != self.available:
            if available:
                telemetry.log.info("event bus: Redis subscription up")
            else:
                telemetry.log.warning("event bus: Redis unreachable (%s); events reach this replica only "
                                      "until it is back", why.__class__.__name__ if why else "?")
        self.available = available
        telemetry.EVENT_BUS_UP.set(int(available))
        self._settled.set()

    async def _listen(self) -> None:
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "*"
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.psubscribe(pattern)
                    while (confirmed := await pubsub.get_message(timeout=self.TIMEOUT_S)) is None or \
                            confirmed["type"] != "psubscribe":
                        if confirmed is None:
                            raise ConnectionError("Redis did not confirm the subscription")
                    self._set_available(True)
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=self.POLL_S)
                        if message is not None and message["type"] == "pmessage":
                            self._deliver(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of the connection: mark down, retry
                self._set_available(False, exc)
                await asyncio.sleep(self.RETRY_S)

    def _deliver(self, channel: str, data: str) -> None:
        channel = channel.removeprefix(self.prefix)
        if not self.local.subscribers(channel):  # most events concern no socket of this process: not parsed
            return
        try:
            event = json.loads(data)
        except ValueError:
            telemetry.log.warning("event bus: ignored a message that is not JSON on %s", channel)
            return
        self.local.deliver(channel, event)

    async def publish(self, channel: str, event: dict) -> bool:
        if self.available is not False:  # while the listener knows Redis is down, do not wait on it
            try:
                await self.redis.publish(self.prefix + channel, json.dumps(event, default=str))
                return True
            except Exception as exc:  # redis errors and OSError alike: best effort
                telemetry.log.warning("event bus: could not publish on %s (%s)", channel, exc.__class__.__name__)
        telemetry.EVENTS_DROPPED.labels("redis_unavailable").inc()
        self.local.deliver(channel, event)  # this replica's own sockets still hear it
        return False

    async def publish_all(self, events: list[Event]) -> bool:
        """One pipeline (one round trip) rather than a PUBLISH per event and channel: a turn has four to seven.
        What Redis refused, or all of it when the pipeline itself failed, reaches this process's own sockets."""
        pairs = [(channel, event.payload) for event in events for channel in event.channels]
        failed = pairs
        if self.available is not False and pairs:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for channel, payload in pairs:
                        pipe.publish(self.prefix + channel, json.dumps(payload, default=str))
                    results = await pipe.execute(raise_on_error=False)
                failed = [pair for pair, result in zip(pairs, results) if isinstance(result, Exception)]
            except Exception as exc:  # redis errors and OSError alike: best effort
                telemetry.log.warning("event bus: could not publish %d events (%s)", len(pairs),
                                      exc.__class__.__name__)
        for channel, payload in failed:
            telemetry.EVENTS_DROPPED.labels("redis_unavailable").inc()
            self.local.deliver(channel, payload)  # this replica's own sockets still hear them
        return not failed

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str):
        self._start()
        await self._settled.wait()  # listening for real (or known down) before the caller goes on
        with self.local.subscription(channels) as events:
            yield events

    async def ping(self) -> None:
        """Quick enough for a readiness probe (1 s by default in Kubernetes) even when Redis hangs."""
        if self.available is False:
            raise ConnectionError("the event subscription is down")
        await asyncio.wait_for(self.redis.ping(), 0.5)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        self.local.queues.clear()
        await self.redis.aclose()


def make_bus(redis_url: str | None, max_connections: int = 20) -> EventBus:
    return RedisBus(redis_url, max_connections=max_connections) if redis_url else InProcessBus()
