"""The Redis event bus through the real Redis at 127.0.0.1:6379 (the cases of tests/helpers/cases/events.py;
tests/unit/test_events.py runs them in-process), and what only Redis has: one subscription per process, a bounded
connection pool."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from bot.infra.events import InProcessBus, RedisBus, conversation_channel, make_bus
from tests.helpers.cases.events import REDIS_URL, WAIT_S, EventBusCases, bus_factory, receive


class TestRedisBus(EventBusCases):
    @pytest.fixture
    def new_bus(self):
        return bus_factory("redis")


def test_make_bus_picks_redis_only_when_a_url_is_given():
    async def scenario():
        assert isinstance(make_bus(None), InProcessBus)
        redis_bus = make_bus(REDIS_URL)
        try:
            assert isinstance(redis_bus, RedisBus) and await asyncio.wait_for(redis_bus.redis.ping(), WAIT_S)
        finally:
            await redis_bus.close()

    asyncio.run(scenario())


def _connections_named(client, name: str) -> list[dict]:
    return [c for c in client.client_list() if c.get("name") == name]


def test_one_redis_subscription_per_process_however_many_sockets_subscribe():
    """200 subscribers (as 200 open sockets) share one Redis connection, pattern-subscribed to the prefix,
    and each still gets only its own channel's events."""
    import redis

    async def scenario():
        prefix = f"distilbot-test-{uuid.uuid4().hex}:"
        bus = RedisBus(REDIS_URL, prefix=prefix, max_connections=5)
        try:
            async with contextlib.AsyncExitStack() as stack:
                streams = [await stack.enter_async_context(bus.subscribe(conversation_channel(str(n))))
                           for n in range(200)]
                for n in range(200):
                    await bus.publish(conversation_channel(str(n)), {"n": n})
                for n, events in enumerate(streams):
                    assert await receive(events) == [{"n": n}]
                client = redis.Redis.from_url(REDIS_URL)
                try:
                    mine = _connections_named(client, f"{prefix}events")
                finally:
                    client.close()
                subscribed = [(int(c["psub"]), int(c["sub"])) for c in mine if int(c["psub"]) or int(c["sub"])]
                assert subscribed == [(1, 0)]  # one connection subscribed, to one pattern
                assert len(mine) <= 5
        finally:
            await bus.close()

    asyncio.run(scenario())


def test_the_redis_connection_pool_is_bounded_and_publishers_wait_for_a_free_connection():
    import redis

    async def scenario():
        prefix = f"distilbot-test-{uuid.uuid4().hex}:"
        bus = RedisBus(REDIS_URL, prefix=prefix, max_connections=3)
        try:
            async with bus.subscribe("many") as events:  # holds one of the 3
                await asyncio.gather(*(bus.publish("many", {"n": n}) for n in range(100)))
                assert sorted(e["n"] for e in await receive(events, 100)) == list(range(100))
            client = redis.Redis.from_url(REDIS_URL)
            try:
                assert 1 <= len(_connections_named(client, f"{prefix}events")) <= 3
            finally:
                client.close()
        finally:
            await bus.close()

    asyncio.run(scenario())
