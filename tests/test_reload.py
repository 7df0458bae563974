"""Hot reload under load against a real server: a version published while visitors chat is picked up
without a failed request and without going back to the old model; a broken version is skipped and the
previous one keeps serving."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.artifact import Registry
from tests.servers import client_limits, served

USERS = 16
MIN_REQUESTS = 32  # per user; users go on until enough replies came from the new version
PUBLISH_AFTER = 48  # replies, so that the new version lands in the middle of the burst
NEW_VERSION_REPLIES = 48  # replies from the new version before the burst may end
BURST_DEADLINE_S = 240
QUESTIONS = ["how much does shipping cost?", "how do I return an item?", "do you ship to Canada?",
             "when will I get my refund?", "which payment methods do you accept?", "can I get an invoice?",
             "how long does standard delivery take?", "can I exchange for a bigger size?"]


@dataclass
class Reply:
    started: float
    finished: float
    status: int | None
    version: str | None
    error: str = ""


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


def publish_copy(registry, broken: bool = False) -> str:
    """Publish the current version's files again as the next version (without labels.json when broken)."""
    registry = Registry(registry)
    staged = registry.stage()
    shutil.copytree(registry.current().path, staged, dirs_exist_ok=True)
    if broken:
        (staged / "labels.json").unlink()
    return registry.publish(staged).version


def burst(url: str, users: int, replies: list[Reply], keep_going, during) -> None:
    """`users` visitors chatting concurrently, each in its own conversation, one request after another, while
    `keep_going(requests_this_visitor_made)` holds, nothing failed and the deadline is not past; every reply
    goes to `replies`. `during(replies)` runs beside them."""
    deadline = time.monotonic() + BURST_DEADLINE_S

    async def visitor(client: httpx.AsyncClient, n: int) -> None:
        session, headers, made = None, {}, 0
        while time.monotonic() < deadline and keep_going(made) and not failures(replies):
            body = {"message": QUESTIONS[(n + made) % len(QUESTIONS)]}
            if session:
                body["session_id"] = session
            started = time.monotonic()
            made += 1
            try:
                response = await client.post("/api/chat", json=body, headers=headers)
            except httpx.HTTPError as exc:
                replies.append(Reply(started, time.monotonic(), None, None, repr(exc)))
                return
            if response.status_code != 200:
                replies.append(Reply(started, time.monotonic(), response.status_code, None, response.text))
                return
            reply = response.json()
            replies.append(Reply(started, time.monotonic(), 200, reply["model_version"]))
            session = reply["session_id"]
            headers = headers or {"Authorization": f"Bearer {reply['session_token']}"}

    async def run():
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=client_limits(users + 4)) as client:
            await asyncio.gather(during(replies), *(visitor(client, n) for n in range(users)))

    asyncio.run(asyncio.wait_for(run(), BURST_DEADLINE_S + 60))


async def wait_for_replies(replies: list[Reply], count: int) -> None:
    deadline = time.monotonic() + BURST_DEADLINE_S
    while len(replies) < count and time.monotonic() < deadline and not failures(replies):
        await asyncio.sleep(0.05)


def failures(replies: list[Reply]) -> list[Reply]:
    return [r for r in replies if r.status != 200]


def metric(url: str, name: str, **labels: str) -> float | None:
    """One sample's value from /metrics (labels in any order), None when there is no such sample."""
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def poll(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    pytest.fail(f"{what} not reached within {timeout} s")


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
