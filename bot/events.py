"""Live events (new messages, typing, status changes) from whoever causes them to every open WebSocket.

In-process by default; through Redis pub/sub when a Redis URL is set, so that a visitor connected to one
API replica sees what an agent on another replica does. Two channels matter:

    conversation.<id>   what the visitor of that conversation sees
    desk                what every agent's console sees (all conversations)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Protocol

DESK = "desk"


def conversation_channel(conversation_id: str) -> str:
    return f"conversation.{conversation_id}"


class EventBus(Protocol):
    async def publish(self, channel: str, event: dict) -> None: ...

    def subscribe(self, *channels: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict]]:
        """Events published on `channels` from the moment this context is entered."""

    async def close(self) -> None: ...


class InProcessBus:
    """One process, no dependencies: a queue per subscriber. A subscriber too slow to keep 1000 events
    behind loses the oldest ones rather than holding up the publisher."""

    def __init__(self, backlog: int = 1000):
        self.backlog = backlog
        self.queues: dict[str, set[asyncio.Queue]] = {}

    async def publish(self, channel: str, event: dict) -> None:
        for queue in list(self.queues.get(channel, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str):
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

    async def close(self) -> None:
        self.queues.clear()


async def _drain(queue: asyncio.Queue) -> AsyncIterator[dict]:
    while True:
        yield await queue.get()


class RedisBus:
    """Redis pub/sub: every replica publishes to and listens on the same Redis. Channels are prefixed so
    several deployments can share one Redis."""

    def __init__(self, url: str, prefix: str = "distilbot:"):
        from redis import asyncio as aioredis

        self.redis = aioredis.from_url(url, decode_responses=True)
        self.prefix = prefix

    async def publish(self, channel: str, event: dict) -> None:
        await self.redis.publish(self.prefix + channel, json.dumps(event, default=str))

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str):
        pubsub = self.redis.pubsub(ignore_subscribe_messages=False)
        await pubsub.subscribe(*(self.prefix + c for c in channels))
        confirmed = 0
        while confirmed < len(channels):  # subscribed for real before the caller goes on: nothing missed
            message = await pubsub.get_message(timeout=5.0)
            if message is None:
                raise ConnectionError("Redis did not confirm the subscription within 5 s")
            confirmed += message["type"] == "subscribe"
        try:
            yield self._listen(pubsub)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe()
                await pubsub.aclose()

    @staticmethod
    async def _listen(pubsub) -> AsyncIterator[dict]:
        async for message in pubsub.listen():
            if message["type"] == "message":
                yield json.loads(message["data"])

    async def close(self) -> None:
        await self.redis.aclose()


def make_bus(redis_url: str | None) -> EventBus:
    return RedisBus(redis_url) if redis_url else InProcessBus()
