"""Two API replicas behind one PostgreSQL database and one Redis, configured as deploy/compose.yaml runs
them: a visitor talks to replica A, an agent works on replica B, and each sees what the other does, live,
through Redis pub/sub. The rate limit is one budget for both replicas, counted in Redis."""

from __future__ import annotations

import contextlib
import json
import random
import time

import httpx
import pytest

from tests.helpers.clients import Live, Visitor, login
from tests.helpers.servers import add_admins, add_agents, compose_api_env, served

HUMAN_PLEASE = "I want to talk to a real person please"


@contextlib.contextmanager
def two_replicas(registry, db_url: str, env_a: dict[str, str], env_b: dict[str, str]):
    """Replica A, then replica B, on the same database; both stopped afterwards."""
    with served(registry, db_url, env_a) as (url_a, _), served(registry, db_url, env_b) as (url_b, _):
        yield url_a, url_b


@pytest.fixture(scope="module")
def replicas(demo_registry, pg_url, redis_url):
    add_agents(pg_url, "carol")
    env = {**compose_api_env(), "DISTILBOT_REDIS_URL": redis_url}
    with two_replicas(demo_registry, pg_url, env, env) as urls:
        yield urls


def next_for(live: Live, kind: str, conversation_id: str, timeout: float = 15.0, **fields) -> dict:
    """The next event of `kind` about this conversation with these top-level fields, skipping any other (the
    desk channel carries every conversation, and the Redis may be shared with other deployments)."""
    deadline = time.monotonic() + timeout
    skipped = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = json.loads(live.socket.recv(timeout=left))
        except TimeoutError:
            break
        if (event["type"] == kind and event.get("conversation_id") == conversation_id
                and all(event.get(k) == v for k, v in fields.items())):
            return event
        skipped.append(event)
    pytest.fail(f"no {kind} event {fields} for {conversation_id} within {timeout} s; saw {skipped[-10:]}")


def next_message(live: Live, conversation_id: str, text: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        event = next_for(live, "message", conversation_id, timeout=max(0.1, deadline - time.monotonic()))
        if event["message"]["text"] == text:
            return event["message"]


def test_a_visitor_on_one_replica_and_an_agent_on_another_see_each_other_live(replicas):
    url_a, url_b = replicas
    carol = login(url_b, "carol")
    inbox = Live(f"{url_b}/api/agent/live", carol.token)  # the agent's console, on B
    visitor = Visitor(url_a)  # the visitor's widget, on A
    try:
        answer = visitor.say("how much does shipping cost?")
        assert answer["decision"] == "answer", answer
        session = visitor.session
        seen = next_message(inbox, session, "how much does shipping cost?")  # sent via A, seen on B
        assert seen["role"] == "user" and seen["intent"] == answer["intent"]["name"]
        assert next_message(inbox, session, answer["replies"][0]["text"])["role"] == "bot"

        live = Live(f"{url_a}/api/conversations/{session}/live", visitor.token)
        try:
            handoff = visitor.say(HUMAN_PLEASE)
            assert handoff["decision"] == "handoff" and handoff["status"] == "waiting_for_agent", handoff
            waiting = {"type": "status", "conversation_id": session, "status": "waiting_for_agent", "agent": None,
                       "agent_id": None}
            assert next_for(inbox, "status", session) == waiting
            assert next_for(live, "status", session) == waiting

            live.socket.send(json.dumps({"type": "typing"}))  # the visitor types on A; the console on B shows it
            assert next_for(inbox, "typing", session)["role"] == "user"

            taken = carol.post(f"/conversations/{session}/take")  # B's REST API
            assert taken.status_code == 200 and taken.json()["status"] == "with_agent", taken.text
            with_agent = {"type": "status", "conversation_id": session, "status": "with_agent", "agent": "Carol",
                          "agent_id": carol.get("/me").json()["id"]}
            assert next_for(live, "status", session) == with_agent
            assert next_for(inbox, "status", session) == with_agent

            inbox.socket.send(json.dumps({"type": "typing", "conversation_id": session}))  # typed on B …
            typing = next_for(live, "typing", session)  # … shown on A
            assert typing["role"] == "agent" and typing["agent"] == "Carol"

            sent = carol.post(f"/conversations/{session}/messages", json={"text": "Hi, Carol here. How can I help?"})
            assert sent.status_code == 201, sent.text
            delivered = next_message(live, session, "Hi, Carol here. How can I help?")
            assert delivered["role"] == "agent" and delivered["agent"] == "Carol"
            assert delivered["id"] == sent.json()["id"]

            silent = visitor.say("my parcel arrived damaged")  # the bot stays quiet; the agent reads it on B
            assert silent["decision"] == "silent" and silent["replies"] == [] and silent["status"] == "with_agent"
            assert next_message(inbox, session, "my parcel arrived damaged")["role"] == "user"
        finally:
            live.close()

        history = httpx.get(f"{url_a}/api/conversations/{session}",
                            headers={"Authorization": f"Bearer {visitor.token}"}, timeout=30).json()
        assert history["status"] == "with_agent" and history["agent"] == "Carol"
        assert [m["role"] for m in history["messages"]] == ["user", "bot", "user", "bot", "agent", "user"]
        transcript = carol.get(f"/conversations/{session}").json()  # B reads what A wrote: one database
        assert [m["text"] for m in transcript["transcript"]] == [m["text"] for m in history["messages"]]
    finally:
        inbox.close()
        carol.close()


def test_an_answer_an_admin_adds_on_one_replica_is_served_by_the_other_within_seconds(replicas, pg_url):
    """No redistillation: replica B stores the new answer, replica A sees the store changed and rebuilds its
    answer index with its own student's embeddings."""
    url_a, url_b = replicas
    add_admins(pg_url, "dora")
    question = "I lost my gift card, can I get it back?"
    before = Visitor(url_a).say(question)
    assert before["intent"]["name"] == "gift_card" and before["template"] != "gift_card_lost", before
    lost = {"id": "gift_card_lost", "intent": "gift_card", "text": "Lost gift cards can be re-sent: write to "
            "{support_email} with your order number.", "examples": ["I lost my gift card", "my gift card was stolen",
                                                                    "I deleted the gift card email"]}
    dora = login(url_b, "dora")
    created = dora.post("/answers", json={"answer": lost, "base": 0})
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 10
    while (reply := Visitor(url_a).say(question))["template"] != "gift_card_lost":
        assert time.monotonic() < deadline, f"replica A still answers with {reply['template']}"
        time.sleep(0.5)
    assert reply["replies"][0]["text"].startswith("Lost gift cards can be re-sent: write to help@"), reply
    assert Visitor(url_b).say(question)["template"] == "gift_card_lost"  # B serves it at once


def test_the_rate_limit_is_one_budget_for_all_replicas(demo_registry, pg_url, redis_url):
    """Five requests per window for one client address, whichever replica they reach: spent on A, B refuses
    with 429 and Retry-After. The client address is this run's own (uvicorn trusts X-Forwarded-For from
    127.0.0.1), so counts left in Redis by earlier runs cannot interfere."""
    limit = "5/10 minutes"
    pick = random.SystemRandom()  # not the seeded global generator: an address no earlier run used
    client = {"X-Forwarded-For": f"10.{pick.randint(0, 255)}.{pick.randint(0, 255)}.{pick.randint(1, 254)}"}
    env_a = {**compose_api_env(), "DISTILBOT_REDIS_URL": redis_url, "DISTILBOT_RATE_LIMIT": limit}
    env_b = {**compose_api_env(), "REDIS_URL": redis_url, "DISTILBOT_RATE_LIMIT": limit}  # the alias also accepted
    with two_replicas(demo_registry, pg_url, env_a, env_b) as (url_a, url_b):
        for _ in range(5):
            assert httpx.get(f"{url_a}/webhooks/rest/", headers=client, timeout=10).status_code == 200
        for url, request in ((url_b, lambda u: httpx.get(f"{u}/webhooks/rest/", headers=client, timeout=10)),
                             (url_b, lambda u: httpx.post(f"{u}/api/chat", json={"message": "hi"}, headers=client,
                                                          timeout=10)),
                             (url_a, lambda u: httpx.get(f"{u}/webhooks/rest/", headers=client, timeout=10))):
            refused = request(url)
            assert refused.status_code == 429, (url, refused.status_code, refused.text)
            retry = refused.headers.get("Retry-After")
            assert retry is not None and retry.isdigit() and 1 <= int(retry) <= 600, refused.headers
            assert refused.json()["detail"].startswith("too many requests: the limit is 5 per")
        for url in (url_a, url_b):  # probes are not rate limited
            assert httpx.get(f"{url}/ready", timeout=10).status_code == 200
            assert httpx.get(f"{url}/health", timeout=10).status_code == 200
