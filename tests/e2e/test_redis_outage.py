"""Redis goes away under a running server (PostgreSQL store, the real student) and comes back: chat keeps
working on the replica, each turn is stored exactly once, live events reach the replica's own sockets and
count as dropped for the others, the rate limiter falls back (to this process's memory, or to 503 when
configured to fail closed), /ready says "degraded" while it lasts, and everything recovers after.

The Redis is this module's own `redis-server` on a free port, so that stopping it touches nobody else. (The
rate limiter without any Redis: tests/unit/test_rate_limit.py.)"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.clients import Live, Visitor
from tests.helpers.servers import free_port, served

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
QUESTIONS = ["how much does shipping cost?", "do you ship abroad?", "how long does delivery take?",
             "can I pay with paypal?"]


class OwnRedis:
    """A throwaway redis-server (no persistence) that a test can stop and start again on the same port."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            for _ in range(100):
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        return
                time.sleep(0.1)
            pytest.fail(f"redis-server did not start on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture(scope="module")
def replica(demo_registry, pg_url, own_redis):
    """One replica as deployed (PostgreSQL, Redis), with a rate limit counted in Redis."""
    env = {"DISTILBOT_REDIS_URL": own_redis.url, "DISTILBOT_RATE_LIMIT": "1000/minute"}
    with served(demo_registry, pg_url, env) as (url, process):
        yield url
        assert process.poll() is None


def metric(url: str, name: str, **labels) -> float:
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text)
    return sum(s.value for f in families for s in f.samples if s.name == name and labels.items() <= s.labels.items())


def ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/ready", timeout=30)


def wait_until_ready(url: str, status: str, within_s: float = 30) -> dict:
    deadline = time.monotonic() + within_s
    while (body := ready(url).json())["status"] != status:
        assert time.monotonic() < deadline, f"/ready still says {body} after {within_s} s"
        time.sleep(0.2)
    return body


def test_redis_stopped_mid_test_every_chat_succeeds_once_and_ready_says_degraded(replica, own_redis):
    url = replica
    visitor = Visitor(url)
    visitor.say(QUESTIONS[0])
    live = Live(f"{url.replace('http', 'ws', 1)}/api/conversations/{visitor.session}/live", visitor.token)
    assert ready(url).json()["status"] == "ready"

    # A second visitor chats non-stop from another thread: turns 10-24 while Redis is down.
    sent, answered = 40, []
    stop_now, stopped, start_now, started = (threading.Event() for _ in range(4))

    def chatter():
        other = Visitor(url)
        for n in range(sent):
            body = {"message": f"{QUESTIONS[n % len(QUESTIONS)]} ({n})"}
            if other.session:
                body["session_id"] = other.session
            headers = {"Authorization": f"Bearer {other.token}"} if other.token else {}
            response = httpx.post(f"{url}/api/chat", json=body, headers=headers, timeout=30)
            answered.append((response.status_code, response.text))
            if response.status_code == 200 and other.session is None:
                other.session, other.token = response.json()["session_id"], response.json()["session_token"]
            if n == 9:
                stop_now.set()
                stopped.wait(60)
            elif n == 24:
                start_now.set()
                started.wait(60)
        chatter.visitor = other

    thread = threading.Thread(target=chatter)
    thread.start()
    try:
        assert stop_now.wait(60)
        dropped_before = metric(url, "distilbot_events_dropped_total", reason="redis_unavailable")
        own_redis.stop()
        stopped.set()

        degraded = ready(url)
        assert degraded.status_code == 200  # still takes traffic: chat works without Redis
        body = degraded.json()
        assert body["status"] == "degraded" and body["degraded"] == ["redis"], body
        assert body["checks"]["store"] == "ok" and body["checks"]["events"].startswith("error: ")

        during = visitor.say(QUESTIONS[1])  # this replica's own socket still hears its turn
        assert live.next("message", text=QUESTIONS[1])["message"]["id"] == during["message_id"]
        assert metric(url, "distilbot_events_dropped_total", reason="redis_unavailable") > dropped_before
        assert metric(url, "distilbot_rate_limit_redis_errors_total", outcome="open") > 0
        assert metric(url, "distilbot_event_bus_up") == 0

        assert start_now.wait(60)
        own_redis.start()
        started.set()
        assert wait_until_ready(url, "ready")["degraded"] == []
    finally:
        stopped.set()
        started.set()
        thread.join(120)

    assert [status for status, _text in answered] == [200] * sent, [a for a in answered if a[0] != 200][:3]
    history = httpx.get(f"{url}/api/conversations/{chatter.visitor.session}",
                        headers={"Authorization": f"Bearer {chatter.visitor.token}"}, timeout=30).json()
    user_messages = [m["text"] for m in history["messages"] if m["role"] == "user"]
    assert user_messages == [f"{QUESTIONS[n % len(QUESTIONS)]} ({n})" for n in range(sent)]  # each once, in order

    # Recovered: the process's subscription is back (an event published straight into Redis reaches the
    # socket) and turns publish through Redis again.
    client = redis.Redis.from_url(own_redis.url)
    try:
        probe = {"type": "probe", "conversation_id": visitor.session}
        client.publish(f"distilbot:conversation.{visitor.session}", json.dumps(probe))
        assert live.next("probe") == probe
    finally:
        client.close()
    dropped_after = metric(url, "distilbot_events_dropped_total", reason="redis_unavailable")
    visitor.say(QUESTIONS[2])
    assert live.next("message", text=QUESTIONS[2])
    assert metric(url, "distilbot_events_dropped_total", reason="redis_unavailable") == dropped_after
    assert metric(url, "distilbot_event_bus_up") == 1
    live.close()

    # The rate limiter tries Redis again a few seconds after its last failure, and then stops falling back.
    deadline = time.monotonic() + 30
    while True:
        errors = metric(url, "distilbot_rate_limit_redis_errors_total")
        visitor.say(QUESTIONS[3])
        if metric(url, "distilbot_rate_limit_redis_errors_total") == errors:
            break
        assert time.monotonic() < deadline, "the rate limiter still falls back 30 s after Redis came back"
        time.sleep(0.5)
