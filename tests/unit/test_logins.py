"""Agents' logins without servers: the login throttle in memory and when its Redis is unreachable, and what
`bot agent disable` says about open sockets without Redis. (Two real replicas sharing a store and Redis:
tests/e2e/test_logins.py.)"""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from bot.cli import app
from bot.desk.agents import LoginThrottle
from tests.helpers.servers import add_agents, free_port


def test_the_cli_says_how_sockets_close_without_redis(tmp_path, monkeypatch):
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    add_agents(db_url, "fay")
    monkeypatch.delenv("DISTILBOT_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    done = CliRunner().invoke(app, ["agent", "disable", "fay", "--db", db_url])
    assert done.exit_code == 0 and "next token check" in done.output, done.output
    assert "DISTILBOT_SOCKET_RECHECK_S" in CliRunner().invoke(app, ["agent", "disable", "--help"]).output


def test_the_throttle_fails_open_when_redis_is_unreachable(caplog):
    """A Redis outage must not lock every agent out: the throttle lets logins through and logs it."""
    throttle = LoginThrottle("1/15minutes", f"redis://127.0.0.1:{free_port()}/0")

    async def attempts():
        for _ in range(3):
            await throttle.failed("gus", "10.0.0.1")
            assert await throttle.retry_after("gus", "10.0.0.1") is None

    asyncio.run(attempts())
    assert "login throttle store unreachable" in caplog.text


def test_the_throttle_in_memory_counts_failures_per_username_and_address():
    throttle = LoginThrottle("2/15minutes")

    async def attempts():
        assert await throttle.retry_after("Hal", "10.0.0.1") is None
        await throttle.failed("Hal", "10.0.0.1")
        await throttle.failed("hal", "10.0.0.2")  # the same username, however it is written
        assert 0 < await throttle.retry_after("hal", "10.0.0.3") <= 900
        assert await throttle.retry_after("ida", "10.0.0.3") is None
        await throttle.failed("ida", "10.0.0.1")
        assert await throttle.retry_after("joe", "10.0.0.1") is not None  # two failures from this address

    asyncio.run(attempts())
