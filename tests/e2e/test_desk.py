"""A whole support-desk conversation against a real server with the real student: the bot answers, asks to
clarify, falls back, runs the order-tracking form, hands off; an agent created with the CLI logs in, sees it
live, takes over, replies live, notes, hands back, resolves; the visitor rates it; the agent relabels. And the
desk's store operations (the cases of tests/helpers/cases/desk.py) on PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.sync.client import connect

from tests.helpers.cases import OnPostgreSQL
from tests.helpers.cases.desk import DeskStoreCases
from tests.helpers.clients import Live, Visitor, login
from tests.helpers.constants import AGENT_PASSWORD as PASSWORD
from tests.helpers.servers import add_agent, served

AMBIGUOUS = "return it or get a refund?"  # return item vs refund status, nearly even
CLARIFY_MARGIN = "0.5"  # the operator's setting (the artifact's is 0.1): clarify when the runner-up has a quarter
GIBBERISH = "blorp zxq fnord wibble"


@pytest.fixture(scope="module")
def desk(demo_registry, tmp_path_factory):
    db_url = f"sqlite:///{tmp_path_factory.mktemp('desk') / 'bot.db'}"
    add_agent(db_url, "alice", "Alice")
    add_agent(db_url, "bob", "Bob")
    with served(demo_registry, db_url, {"DISTILBOT_CLARIFY_MARGIN": CLARIFY_MARGIN}) as (url, _process):
        yield url, db_url


def render(transcript: dict) -> str:
    """The transcript as an agent reads it, one line per message with what the bot understood and did."""
    lines = []
    for m in transcript["transcript"]:
        who = {"user": "visitor", "bot": "bot", "agent": f"agent {m['agent']}"}[m["role"]]
        extra = ""
        if m["role"] == "user":
            extra = f"  [intent {m['intent']} {m['confidence']:.2f}"
            extra += f", corrected to {m['correction']['intent']}]" if m["correction"] else "]"
        elif m["role"] == "bot":
            extra = f"  [{m['decision']}" + (f", template {m['template']}]" if m["template"] else "]")
            extra += f" (buttons: {', '.join(b['title'] for b in m['buttons'])})" if m["buttons"] else ""
            extra += " 👎" if m["feedback"] == "down" else ""
        lines.append(f"{who}: {m['text']}{extra}")
    lines += [f"(private note) {n['text']}" for n in transcript["notes"]]
    lines.append(f"status {transcript['status']}, CSAT {transcript['csat']}, reviewed {transcript['reviewed']}")
    return "\n".join(lines)


def test_scripted_support_conversation(desk, tmp_path):
    url, db_url = desk
    alice = login(url, "alice")
    inbox = Live(f"{url}/api/agent/live", alice.token)
    visitor = Visitor(url)

    answer = visitor.say("how much does shipping cost?")
    assert answer["decision"] == "answer" and answer["template"] == "shipping_cost_rates"
    assert inbox.next("message")["message"]["text"] == "how much does shipping cost?"  # agents watch live

    clarify = visitor.say(AMBIGUOUS)
    assert clarify["decision"] == "clarify", clarify["ranking"][:3]
    buttons = clarify["replies"][0]["buttons"]
    assert {"/refund_status", "/return_item"} <= {b["payload"] for b in buttons}
    chosen = visitor.say("/refund_status")
    assert chosen["decision"] == "answer" and chosen["intent"]["name"] == "refund_status"

    fallback = visitor.say(GIBBERISH)
    assert fallback["decision"] == "fallback" and "other words" in fallback["replies"][0]["text"]
    assert visitor.put(f"/messages/{fallback['replies'][0]['id']}/feedback", {"value": "down"}).status_code == 204

    asked = visitor.say("where is my order?")
    assert asked["decision"] == "form" and asked["replies"][0]["text"].startswith("What's your order number?")
    bad = visitor.say("NW12")
    assert bad["replies"][0]["text"].startswith("“NW12” doesn't look like an order number")
    number = visitor.say("NW482913")
    assert "e-mail address you used for order NW482913" in number["replies"][0]["text"]
    good = visitor.say("ana.costa@example.com")
    assert good["replies"][0]["text"].startswith("Order NW482913 is on its way with DHL")

    live = Live(f"{url}/api/conversations/{visitor.session}/live", visitor.token)
    handoff = visitor.say("I want to talk to a real person please")
    assert handoff["decision"] == "handoff" and handoff["status"] == "waiting_for_agent"
    waiting_event = {"type": "status", "conversation_id": visitor.session, "status": "waiting_for_agent",
                     "agent": None, "agent_id": None}
    assert inbox.next("status") == waiting_event and live.next("status") == waiting_event
    waiting = alice.get("/conversations", params={"status": "waiting_for_agent"}).json()
    assert visitor.session in [c["id"] for c in waiting["conversations"]] and waiting["counts"]["waiting_for_agent"]

    assert alice.post(f"/conversations/{visitor.session}/take").json()["status"] == "with_agent"
    assert live.next("status") == {"type": "status", "conversation_id": visitor.session, "status": "with_agent",
                                   "agent": "Alice", "agent_id": alice.get("/me").json()["id"]}
    bob = login(url, "bob")
    taken = bob.post(f"/conversations/{visitor.session}/take")
    assert taken.status_code == 409 and "Alice already has" in taken.json()["detail"]
    inbox.socket.send(json.dumps({"type": "typing", "conversation_id": visitor.session}))
    assert live.next("typing")["agent"] == "Alice"
    sent = alice.post(f"/conversations/{visitor.session}/messages",
                      json={"text": "Hi, I'm Alice. How can I help?"})
    assert sent.status_code == 201
    delivered = live.next("message")["message"]
    assert delivered["role"] == "agent" and delivered["text"] == "Hi, I'm Alice. How can I help?"
    assert delivered["agent"] == "Alice"

    silent = visitor.say("my parcel arrived damaged")
    assert silent["decision"] == "silent" and silent["replies"] == []
    assert inbox.next("message", "my parcel arrived damaged")["message"]["intent"] == "damaged_item"
    assert alice.post(f"/conversations/{visitor.session}/notes",
                      json={"text": "VIP customer, offered a replacement"}).status_code == 201

    assert alice.post(f"/conversations/{visitor.session}/hand-back").json()["status"] == "bot"
    assert live.next("status")["status"] == "bot"
    back = visitor.say("how do I return an item?")
    assert back["decision"] == "answer" and back["intent"]["name"] == "return_item"

    assert visitor.put("/csat", {"score": 5}).status_code == 409  # not resolved yet
    assert alice.post(f"/conversations/{visitor.session}/resolve").json()["status"] == "resolved"
    assert live.next("status")["status"] == "resolved"
    assert visitor.put("/csat", {"score": 5}).status_code == 204

    transcript = alice.get(f"/conversations/{visitor.session}").json()
    ambiguous = next(m for m in transcript["transcript"] if m["text"] == AMBIGUOUS)
    relabelled = alice.put(f"/messages/{ambiguous['id']}/intent", json={"intent": "refund_status"})
    assert relabelled.status_code == 200 and relabelled.json()["intent"] == "refund_status"
    malformed = next(m for m in transcript["transcript"] if m["text"] == "NW12")  # an order number, whatever
    corrected = alice.put(f"/messages/{malformed['id']}/intent", json={"intent": "order_status"}).json()
    assert corrected["intent"] == "order_status" and corrected["predicted_intent"] == malformed["intent"]
    assert corrected["confirmed"] == (malformed["intent"] == "order_status")
    assert alice.put(f"/conversations/{visitor.session}/reviewed", json={"reviewed": True}).json()["reviewed"]

    transcript = alice.get(f"/conversations/{visitor.session}").json()
    assert transcript["status"] == "resolved" and transcript["csat"] == 5 and transcript["reviewed"]
    bot_turns = [m for m in transcript["transcript"] if m["role"] == "bot"]
    assert all(m["decision"] for m in bot_turns) and any(m["template"] for m in bot_turns)
    user_turns = [m for m in transcript["transcript"] if m["role"] == "user"]
    assert all(m["intent"] and m["confidence"] is not None for m in user_turns)
    assert next(m for m in user_turns if m["text"] == AMBIGUOUS)["correction"]["intent"] == "refund_status"
    assert transcript["notes"][0]["text"] == "VIP customer, offered a replacement"
    history = httpx.get(f"{url}/api/conversations/{visitor.session}",
                        headers={"Authorization": f"Bearer {visitor.token}"}).json()
    assert "VIP" not in json.dumps(history)  # private notes never reach the visitor
    assert [m["role"] for m in history["messages"]].count("agent") == 1

    import sqlalchemy

    with sqlalchemy.create_engine(db_url).connect() as db:
        stored = db.execute(sqlalchemy.text("select text, intent, predicted_intent from corrections")).all()
    assert (AMBIGUOUS, "refund_status", ambiguous["intent"]) in stored
    assert ("NW12", "order_status", malformed["intent"]) in stored
    thumbs = alice.get("/conversations", params={"thumbs_down": True}).json()["conversations"]
    assert visitor.session in [c["id"] for c in thumbs]
    for params in ({"intent": "order_status"}, {"low_confidence": True}, {"q": "NW482913"},
                   {"since": "2000-01-01"}):
        assert visitor.session in [c["id"] for c in alice.get("/conversations", params=params).json()[
            "conversations"]], params
    assert alice.get("/conversations", params={"until": "2000-01-01"}).json()["total"] == 0
    review = alice.get("/review").json()
    assert GIBBERISH in [m["text"] for m in review] and AMBIGUOUS not in [m["text"] for m in review]

    text = render(transcript)
    (tmp_path / "transcript.txt").write_text(text + "\n")
    print("\n" + text)
    live.close()
    inbox.close()


def test_the_rasa_rest_channel_speaks_rasa(desk):
    url, _ = desk
    first = httpx.post(f"{url}/webhooks/rest/webhook", json={"sender": "rasa-user-1", "message": "where is my order?"})
    assert first.status_code == 200
    replies = first.json()
    assert replies and all(set(r) <= {"recipient_id", "text", "buttons"} for r in replies)
    assert replies[0]["recipient_id"] == "rasa-user-1" and replies[0]["text"].startswith("What's your order number?")
    second = httpx.post(f"{url}/webhooks/rest/webhook", json={"sender": "rasa-user-1", "message": "NW340018"}).json()
    assert "e-mail address you used for order NW340018" in second[0]["text"]  # the same conversation, by sender
    third = httpx.post(f"{url}/webhooks/rest/webhook",
                       json={"sender": "rasa-user-1", "message": "dora.novak@example.com"}).json()
    assert third[0]["text"].startswith("Order NW340018 was delivered")
    # whoever else writes as "rasa-user-1" later must prove the order again: the proof lasted for that form
    again = httpx.post(f"{url}/webhooks/rest/webhook",
                       json={"sender": "rasa-user-1", "message": "where is my order?"}).json()
    assert "e-mail address you used for order NW340018" in again[0]["text"]
    assert httpx.get(f"{url}/webhooks/rest/").json() == {"status": "ok"}


def test_agent_endpoints_need_a_valid_token(desk):
    url, _ = desk
    for headers in ({}, {"Authorization": "Bearer forged"}, {"Authorization": "Basic YWxpY2U6eA=="}):
        response = httpx.get(f"{url}/api/agent/conversations", headers=headers)
        assert response.status_code == 401 and response.json()["detail"]
    wrong = httpx.post(f"{url}/api/agent/login", json={"username": "alice", "password": "not the password"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "wrong username or password"}
    nobody = httpx.post(f"{url}/api/agent/login", json={"username": "mallory", "password": PASSWORD})
    assert nobody.status_code == 401
    alice = login(url, "alice")
    assert alice.post("/logout").status_code == 204
    assert alice.get("/me").status_code == 401  # the token died with the logout


def test_sockets_refuse_wrong_tokens(desk):
    url, _ = desk
    visitor = Visitor(url)
    visitor.say("hello")
    for path, token in ((f"/api/conversations/{visitor.session}/live", "forged"), ("/api/agent/live", "forged"),
                        (f"/api/conversations/{'0' * 32}/live", visitor.token)):
        with connect(f"{url.replace('http', 'ws', 1)}{path}") as socket:
            socket.send(json.dumps({"type": "auth", "token": token}))
            assert json.loads(socket.recv(timeout=10))["type"] == "error"


class TestDeskOnPostgreSQL(OnPostgreSQL, DeskStoreCases):
    """The desk's store operations on a fresh PostgreSQL database each."""
