"""The in-process event bus (the cases of tests/helpers/cases/events.py; tests/e2e/test_events.py runs them
through Redis), and what the Redis bus does when no Redis answers."""

from __future__ import annotations

import asyncio

import pytest

from bot.infra.events import DESK, InProcessBus, RedisBus
from tests.helpers.cases.events import WAIT_S, EventBusCases, bus_factory, receive


class TestInProcessBus(EventBusCases):
    @pytest.fixture
    def new_bus(self):
        return bus_factory("in-process")


def test_a_slow_in_process_subscriber_loses_the_oldest_events_not_the_publisher_its_time():
    async def scenario():
        bus = InProcessBus(backlog=3)
        async with bus.subscribe(DESK) as events:
            for n in range(5):
                await asyncio.wait_for(bus.publish(DESK, {"n": n}), WAIT_S)  # never blocks on a full queue
            assert await receive(events, 3) == [{"n": 2}, {"n": 3}, {"n": 4}]

    asyncio.run(scenario())


def test_with_redis_unreachable_publishing_reaches_this_process_only_and_counts_as_dropped():
    """Best effort: nothing raises to the publisher (a chat turn is already stored), the process's own
    subscribers still hear it, and the loss for other replicas is counted; ping (for /ready) fails."""
    from prometheus_client import REGISTRY

    def dropped() -> float:
        return REGISTRY.get_sample_value("distilbot_events_dropped_total", {"reason": "redis_unavailable"}) or 0

    async def scenario():
        bus = RedisBus("redis://127.0.0.1:1/0", prefix="distilbot-test-unreachable:")
        try:
            before = dropped()
            async with bus.subscribe(DESK) as events:
                assert bus.available is False
                assert await asyncio.wait_for(bus.publish(DESK, {"n": 1}), WAIT_S) is False
                assert await receive(events) == [{"n": 1}]
            assert dropped() == before + 1
            with pytest.raises(Exception):  # noqa: B017 - whichever connection error redis-py raises
                await bus.ping()
        finally:
            await bus.close()

    asyncio.run(scenario())
