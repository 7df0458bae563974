"""Hot reload under load against a real server: a version published while visitors chat is picked up
without a failed request and without going back to the old model; a broken version is skipped and the
previous one keeps serving."""

from __future__ import annotations

import asyncio
import shutil
import time

import httpx
import pytest

from bot.model.artifact import Registry
from tests.helpers.registries import publish_copy
from tests.helpers.servers import metric, served
from tests.helpers.traffic import Reply, burst, failures, wait_for_replies
from tests.helpers.waiting import poll

USERS = 16
MIN_REQUESTS = 32  # per user; users go on until enough replies came from the new version
PUBLISH_AFTER = 48  # replies, so that the new version lands in the middle of the burst
NEW_VERSION_REPLIES = 48  # replies from the new version before the burst may end


@pytest.fixture
def registry(demo_registry, tmp_path):
    """A private copy of the demo registry (v0001 and `current`), free to publish into."""
    copy = tmp_path / "registry"
    shutil.copytree(demo_registry, copy, symlinks=True)
    assert Registry(copy).current().version == "v0001"
    return copy


@pytest.fixture
def server(registry, tmp_path):
    with served(registry, f"sqlite:///{tmp_path / 'bot.db'}", {"DISTILBOT_RELOAD_INTERVAL_S": "0.5"}) as (url, _):
        yield url



def test_a_version_published_under_load_is_served_without_a_failed_request(server, registry):
    replies: list[Reply] = []
    published: dict = {}

    def new_served() -> int:
        return sum(r.version == "v0002" for r in replies)

    async def publish_midway(_replies) -> None:
        await wait_for_replies(replies, PUBLISH_AFTER)
        if not failures(replies):
            published["at"] = time.monotonic()
            published["version"] = await asyncio.to_thread(publish_copy, registry)

    burst(server, USERS, replies, lambda made: made < MIN_REQUESTS or new_served() < NEW_VERSION_REPLIES,
          publish_midway)

    assert not failures(replies), failures(replies)[:5]
    assert published.get("version") == "v0002"
    assert len(replies) >= USERS * MIN_REQUESTS
    assert {r.version for r in replies} == {"v0001", "v0002"}
    assert new_served() >= NEW_VERSION_REPLIES, "the new version was hardly served"
    assert all(r.version == "v0001" for r in replies if r.finished < published["at"])  # nothing before publishing
    first_new = min(r.finished for r in replies if r.version == "v0002")
    stale = [r for r in replies if r.version == "v0001" and r.started > first_new]
    assert not stale, f"{len(stale)} requests started after v0002 was served and still got v0001"

    health = httpx.get(f"{server}/health", timeout=10).json()
    assert health == {"status": "ok", "model_version": "v0002", "backend": "onnx-int8"}
    assert metric(server, "distilbot_model_reloads_total", outcome="done") == 1.0
    assert metric(server, "distilbot_model_reloads_total", outcome="failed") is None
    assert metric(server, "distilbot_model_info", backend="onnx-int8", version="v0002") == 1.0
    assert metric(server, "distilbot_model_info", backend="onnx-int8", version="v0001") is None


def test_a_broken_version_is_skipped_and_the_previous_one_keeps_serving(server, registry):
    """labels.json is missing from v0002: the reload fails, is counted, and v0001 answers on; a good v0003
    published afterwards is picked up (one failure does not stop hot reload)."""
    replies: list[Reply] = []
    failed: dict = {}

    def reload_failed() -> bool:
        return metric(server, "distilbot_model_reloads_total", outcome="failed") == 1.0

    async def publish_broken(_replies) -> None:
        await wait_for_replies(replies, 16)
        failed["version"] = await asyncio.to_thread(publish_copy, registry, True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not failures(replies):
            if await asyncio.to_thread(reload_failed):
                failed["at"] = time.monotonic()
                return
            await asyncio.sleep(0.2)
        failed["at"] = float("inf")  # gave up: let the visitors stop

    def after_failure() -> int:
        return sum(r.started > failed["at"] for r in replies)

    burst(server, 4, replies, lambda _made: "at" not in failed or after_failure() < 16, publish_broken)

    assert failed.get("version") == "v0002" and Registry(registry).current().version == "v0002"
    assert failed["at"] < float("inf"), "the broken version's reload was not counted as failed"
    assert not failures(replies), failures(replies)[:5]
    assert {r.version for r in replies} == {"v0001"}
    assert after_failure() >= 16  # requests after the failed reload succeeded too
    assert httpx.get(f"{server}/health", timeout=10).json()["model_version"] == "v0001"
    assert metric(server, "distilbot_model_reloads_total", outcome="failed") == 1.0
    assert metric(server, "distilbot_model_reloads_total", outcome="done") is None
    assert metric(server, "distilbot_model_info", backend="onnx-int8", version="v0001") == 1.0

    # Repaired: the next good version is picked up, so one failure does not stop hot reload.
    fixed = Registry(registry)
    staged = fixed.stage()
    shutil.copytree(fixed.root / "v0001", staged, dirs_exist_ok=True)
    assert fixed.publish(staged).version == "v0003"
    poll(lambda: httpx.get(f"{server}/health", timeout=10).json()["model_version"] == "v0003", 60, "serving v0003")
    assert metric(server, "distilbot_model_reloads_total", outcome="done") == 1.0
    assert metric(server, "distilbot_model_reloads_total", outcome="failed") == 1.0
    chat = httpx.post(f"{server}/api/chat", json={"message": "how much does shipping cost?"}, timeout=30)
    assert chat.status_code == 200 and chat.json()["model_version"] == "v0003"
