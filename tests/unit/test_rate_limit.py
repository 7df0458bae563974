"""The rate-limit middleware (bot/infra/guards.py) in-process, on a Redis port where nothing listens. (Redis
going away under a real server: tests/e2e/test_redis_outage.py.)"""

from __future__ import annotations

import asyncio

import httpx

from bot.infra.guards import RateLimit
from tests.helpers.servers import free_port


async def _ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _statuses(limiter: RateLimit, n: int) -> list[httpx.Response]:
    async def requests():
        transport = httpx.ASGITransport(app=limiter, client=("10.1.2.3", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            return [await client.get("/api/anything") for _ in range(n)]

    return asyncio.run(requests())


def test_without_redis_the_rate_limit_counts_in_memory_by_default_and_refuses_with_503_when_failing_closed():
    """The middleware itself, on a Redis port where nothing listens: failing open still limits each process
    on its own (the 4th request of 3/minute gets 429); failing closed refuses with 503 and Retry-After."""
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    failing_open = _statuses(RateLimit(_ok_app, "3/minute", nowhere), 4)
    assert [r.status_code for r in failing_open] == [200, 200, 200, 429]

    failing_closed = _statuses(RateLimit(_ok_app, "3/minute", nowhere, fail_open=False), 2)
    assert [r.status_code for r in failing_closed] == [503, 503]
    assert failing_closed[0].headers["retry-after"].isdigit()
    assert "rate limiting is unavailable" in failing_closed[0].json()["detail"]
