"""The live-event buses of bot/infra/events.py (in-process in the unit tier, through the real Redis at
127.0.0.1:6379 in the e2e tier: tests/unit/test_events.py, tests/e2e/test_events.py): who gets what, in which
order, and that leaving a subscription cleans up. (pytest-asyncio is not installed: each test runs its coroutine
with asyncio.run, and every wait has a timeout.)"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid

import pytest

from bot.infra.events import AGENTS, DESK, Event, InProcessBus, RedisBus, conversation_channel, publish_revocation

REDIS_URL = "redis://127.0.0.1:6379/0"
WAIT_S = 5.0


def _make_in_process(prefix: str):
    return InProcessBus()


def _make_redis(prefix: str):
    return RedisBus(REDIS_URL, prefix=prefix)


def bus_factory(kind: str):
    """A factory for a fresh bus (called inside the test's event loop); the Redis one with its own prefix so
    concurrent runs sharing the Redis never see each other's events."""
    prefix = f"distilbot-test-{uuid.uuid4().hex}:"
    make = _make_in_process if kind == "in-process" else _make_redis
    return lambda: make(prefix)


def run(coroutine_function, new_bus):
    """Run `coroutine_function(bus)` on a fresh bus in a fresh event loop; the bus is closed afterwards."""

    async def main():
        bus = new_bus()
        try:
            await asyncio.wait_for(coroutine_function(bus), 30)
        finally:
            await bus.close()

    asyncio.run(main())


async def receive(events, n: int = 1) -> list[dict]:
    return [await asyncio.wait_for(anext(events), WAIT_S) for _ in range(n)]


async def subscribers_of(bus, channel: str) -> int:
    """How many subscriptions the bus still holds on `channel` (in memory for both: the Redis bus holds one
    pattern subscription for the whole process and fans out locally)."""
    return bus.local.subscribers(channel)


class EventBusCases:
    """What every bus does; a subclass gives the `new_bus` fixture (a factory: `bus_factory(kind)`)."""

    def test_a_subscriber_gets_what_is_published_on_its_channels_after_it_subscribed_in_order(self, new_bus):
        async def scenario(bus):
            await bus.publish("a", {"n": 0, "before": "subscribing"})
            async with bus.subscribe("a", "b") as events:
                sent = [("a", {"n": 1}), ("b", {"n": 2, "text": "naïve <b>ü</b> 🤖"}),
                        ("a", {"n": 3, "nested": {"x": [1, 2]}}), ("b", {"n": 4})]
                for channel, event in sent:
                    await bus.publish(channel, event)
                assert await receive(events, 4) == [event for _channel, event in sent]

        run(scenario, new_bus)

    def test_publish_all_sends_each_event_on_each_of_its_channels_in_order(self, new_bus):
        async def scenario(bus):
            async with bus.subscribe(DESK) as desk, bus.subscribe(conversation_channel("c1")) as visitor:
                sent = [Event((conversation_channel("c1"),), {"n": 1}), Event((DESK,), {"n": 2}),
                        Event((conversation_channel("c1"), DESK), {"n": 3, "text": "naïve 🤖"})]
                assert await bus.publish_all(sent) is True
                assert await bus.publish_all([]) is True
                desk_got, visitor_got = await asyncio.gather(receive(desk, 2), receive(visitor, 2))
                assert desk_got == [{"n": 2}, {"n": 3, "text": "naïve 🤖"}]
                assert visitor_got == [{"n": 1}, {"n": 3, "text": "naïve 🤖"}]

        run(scenario, new_bus)

    def test_events_on_other_channels_are_not_received(self, new_bus):
        async def scenario(bus):
            async with bus.subscribe(conversation_channel("mine")) as events:
                await bus.publish(conversation_channel("theirs"), {"n": "not for me"})
                await bus.publish(DESK, {"n": "not for me either"})
                await bus.publish(conversation_channel("mine"), {"n": "mine"})
                # delivery is in order per subscriber, so anything from the other channels would have come first
                assert await receive(events) == [{"n": "mine"}]

        run(scenario, new_bus)

    def test_two_subscribers_both_get_every_event(self, new_bus):
        async def scenario(bus):
            async with bus.subscribe(DESK) as first, bus.subscribe(DESK, "other") as second:
                for n in range(3):
                    await bus.publish(DESK, {"n": n})
                first_got, second_got = await asyncio.gather(receive(first, 3), receive(second, 3))
                assert first_got == second_got == [{"n": 0}, {"n": 1}, {"n": 2}]

        run(scenario, new_bus)

    def test_subscribers_on_different_channels_get_only_their_own(self, new_bus):
        async def scenario(bus):
            async with bus.subscribe("left") as left, bus.subscribe("right") as right:
                await bus.publish("left", {"side": "left"})
                await bus.publish("right", {"side": "right"})
                await bus.publish("left", {"side": "left", "n": 2})
                assert await receive(left, 2) == [{"side": "left"}, {"side": "left", "n": 2}]
                assert await receive(right) == [{"side": "right"}]

        run(scenario, new_bus)

    def test_after_the_subscription_ends_publishing_still_works_and_nothing_is_left_subscribed(self, new_bus):
        async def scenario(bus):
            async with bus.subscribe("gone", "also-gone") as events:
                await bus.publish("gone", {"n": 1})
                assert await receive(events) == [{"n": 1}]
                assert await subscribers_of(bus, "gone") == 1
            for channel in ("gone", "also-gone"):
                await bus.publish(channel, {"n": 2})  # nobody listens: no error
                assert await subscribers_of(bus, channel) == 0
            async with bus.subscribe("gone") as again:  # a new subscription starts from now, not from the backlog
                await bus.publish("gone", {"n": 3})
                assert await receive(again) == [{"n": 3}]

        run(scenario, new_bus)

    def test_leaving_while_a_reader_waits_does_not_break_the_bus(self, new_bus):
        """A WebSocket closes while its forwarding task waits for the next event: the task is cancelled and the
        subscription exits; the bus serves the other subscribers as before."""

        async def scenario(bus):
            async with bus.subscribe("shared") as staying:
                async with bus.subscribe("shared") as leaving:
                    waiter = asyncio.create_task(anext(leaving))
                    await asyncio.sleep(0.05)
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait_for(waiter, WAIT_S)
                await bus.publish("shared", {"n": 1})
                assert await receive(staying) == [{"n": 1}]
                assert await subscribers_of(bus, "shared") == 1

        run(scenario, new_bus)

    def test_publish_revocation_sends_the_documented_event_on_the_agents_channel(self, new_bus):
        async def scenario(bus):
            token_hash = hashlib.sha256(b"a token").hexdigest()
            async with bus.subscribe(AGENTS) as events:
                assert await publish_revocation(bus, 7, token_hash) is True
                assert await publish_revocation(bus, 8) is True
                assert await receive(events, 2) == [
                    {"type": "tokens_revoked", "agent_id": 7, "token_hash": token_hash},
                    {"type": "tokens_revoked", "agent_id": 8, "token_hash": None}]
            with pytest.raises(ValueError):
                await publish_revocation(bus, 7, "not a sha256")

        run(scenario, new_bus)
