"""A model update rolled across two API replicas while visitors chat through nginx (the proxy settings of
the compose file), on the shared PostgreSQL and Redis, as deployed: a new version is published and every
replica takes it up by itself (hot reload, no restart), then it is rolled back the same way. No request
fails at any point, and once every replica reports a version no answer comes from the other."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from bot.model.artifact import Registry
from tests.helpers.proxy import nginx_in_front
from tests.helpers.registries import publish_copy
from tests.helpers.servers import compose_api_env, free_port, metric, start_server, stop
from tests.helpers.traffic import Reply, burst, failures, wait_for_replies

USERS = 6
REPLIES_PER_STEP = 80
CHAT_ROUTE = {"method": "POST", "route": "/api/chat", "status": "200"}


@pytest.fixture
def registry(demo_registry, tmp_path):
    copy = tmp_path / "registry"
    shutil.copytree(demo_registry, copy, symlinks=True)
    return copy


def model_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", "model", *args], capture_output=True, text=True, timeout=60)


def address(url: str) -> str:
    return url.removeprefix("http://")


def versions(replicas: dict[str, object]) -> set[str]:
    return {httpx.get(f"{url}/health", timeout=10).json()["model_version"] for url in replicas}


async def until(check, what: str, replies: list[Reply], timeout: float = 60) -> float:
    """Waits (beside the visitors) until `check()` holds; returns when, or fails the run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not failures(replies):
        if await asyncio.to_thread(check):
            return time.monotonic()
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not reached in {timeout} s")


def test_a_model_update_rolls_across_two_replicas_behind_nginx_without_a_failed_request(
        registry, pg_url, redis_url):
    env = {**compose_api_env(), "REDIS_URL": redis_url, "DISTILBOT_RELOAD_INTERVAL_S": "0.5"}
    ports = [free_port(), free_port()]
    replicas = {f"http://127.0.0.1:{port}": start_server(registry, pg_url, port, env) for port in ports}
    replies: list[Reply] = []
    marks: dict[str, float] = {}

    async def roll(_replies) -> None:
        async def step(name: str) -> None:
            await wait_for_replies(replies, len(replies) + REPLIES_PER_STEP)
            marks[name] = time.monotonic()

        await step("started")
        marks["v0002 published"] = time.monotonic()
        assert await asyncio.to_thread(publish_copy, registry) == "v0002"
        marks["v0002 everywhere"] = await until(lambda: versions(replicas) == {"v0002"}, "both on v0002", replies)
        await step("served v0002")
        assert (await asyncio.to_thread(model_cli, "use", "v0001", "--registry", str(registry))).returncode == 0
        marks["v0001 everywhere"] = await until(lambda: versions(replicas) == {"v0001"}, "both back on v0001",
                                                replies)
        await step("served v0001")

    try:
        with nginx_in_front([address(url) for url in replicas], free_port()) as proxy:
            burst(proxy, USERS, replies, lambda _made: "served v0001" not in marks, roll)
        chats = [metric(url, "distilbot_request_seconds_count", **CHAT_ROUTE) or 0 for url in replicas]
    finally:
        for process in replicas.values():
            stop(process)

    assert not failures(replies), failures(replies)[:5]
    assert len(marks) == 6, marks  # every step was reached
    served = {r.version for r in replies}
    assert served == {"v0001", "v0002"}
    late = [r for r in replies if r.started > marks["v0002 everywhere"] and r.finished < marks["served v0002"]]
    assert late and all(r.version == "v0002" for r in late), "a replica still answered with v0001"
    back = [r for r in replies if r.started > marks["v0001 everywhere"]]
    assert back and all(r.version == "v0001" for r in back), "a replica still answered with v0002 after rollback"
    assert all(count > REPLIES_PER_STEP / 2 for count in chats), f"nginx did not spread the load: {chats}"


def test_model_use_switches_only_to_a_published_version_and_waits_for_a_running_redistillation(registry):
    assert publish_copy(registry) == "v0002"
    listed = model_cli("list", "--registry", str(registry))
    assert listed.returncode == 0 and [line.split("\t")[0] for line in listed.stdout.splitlines()] == \
        ["  v0001", "* v0002"]
    unknown = model_cli("use", "v0009", "--registry", str(registry))
    assert unknown.returncode == 2 and "no version 'v0009'" in unknown.stderr
    with Registry(registry).lock():  # a redistillation is writing
        busy = model_cli("use", "v0001", "--registry", str(registry))
    assert busy.returncode == 5 and "another run is writing" in busy.stderr
    assert Registry(registry).current().version == "v0002"  # nothing changed
    done = model_cli("use", "v0001", "--registry", str(registry))
    assert done.returncode == 0 and "current: v0001 (was v0002)" in done.stdout
    assert Registry(registry).current().version == "v0001"
