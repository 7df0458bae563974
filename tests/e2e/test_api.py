"""The chat API on the real distilled demo bot, through FastAPI's test client."""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from bot.api.app import create_app
from bot.conversation.policy import PolicyConfig
from bot.desk.desk import get_conversation, summary
from bot.infra.office_hours import DAYS
from bot.infra.settings import Settings
from bot.infra.store import ConversationStatus
from tests.helpers.constants import DATA


@pytest.fixture(scope="module")
def settings(demo_registry, tmp_path_factory) -> Settings:
    db = tmp_path_factory.mktemp("db") / "bot.db"
    return Settings(registry=demo_registry, db_url=f"sqlite:///{db}", seed_orders=DATA / "orders.json",
                    rate_limit="off")


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client


def chat(client, message, session=None, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"message": message} if session is None else {"message": message, "session_id": session}
    return client.post("/api/chat", json=body, headers=headers)


def test_demo_bot_meets_the_accuracy_floor(demo_registry):
    metrics = json.loads((demo_registry / "current" / "metrics.json").read_text())
    assert metrics["student"]["accuracy"] >= 0.90
    assert metrics["teacher"]["accuracy"] >= 0.90


def test_a_question_gets_the_right_answer_with_everything_the_clients_need(client):
    response = chat(client, "how much does shipping cost?")
    assert response.status_code == 200
    body = response.json()
    assert body["intent"]["name"] == "shipping_cost" and 0 < body["intent"]["confidence"] <= 1
    assert body["decision"] == "answer"
    assert body["template"] == "shipping_cost_rates"
    assert body["replies"] and body["replies"][0]["text"]
    assert all(set(b) == {"title", "payload"} for r in body["replies"] for b in r["buttons"])
    assert body["ranking"][0] == body["intent"] and len(body["ranking"]) > 1
    assert body["session_id"] and body["session_token"]


def test_a_follow_up_continues_the_conversation_and_fills_slots(client):
    first = chat(client, "hi there").json()
    session, token = first["session_id"], first["session_token"]
    second = chat(client, "has order NW482913 shipped yet? my email is ana.costa@example.com", session, token)
    assert second.status_code == 200
    body = second.json()
    assert body["session_id"] == session and body["session_token"] is None
    assert body["intent"]["name"] == "order_status" and body["decision"] == "form"
    assert body["replies"][0]["text"].startswith("Order NW482913 is on its way with DHL")  # from the orders table


def test_order_tracking_form_re_asks_a_malformed_number_and_lets_the_visitor_change_subject(client):
    first = chat(client, "where is my order?").json()
    session, token = first["session_id"], first["session_token"]
    assert first["decision"] == "form" and first["template"] == "order_status_tracking"
    assert first["replies"][0]["text"].startswith("What's your order number?")
    bad = chat(client, "NW12", session, token).json()
    assert [r["text"][:40] for r in bad["replies"]] == ["“NW12” doesn't look like an order number",
                                                        "What's your order number? It starts with"]
    good = chat(client, "NW340018", session, token).json()
    assert good["replies"][0]["text"].startswith("To keep your orders private, I need the e-mail address")
    proved = chat(client, "dora.novak@example.com", session, token).json()
    assert proved["replies"][0]["text"].startswith("Order NW340018 was delivered")
    chat(client, "where is my parcel", session, token)
    other = chat(client, "how much does shipping cost?", session, token).json()
    assert other["decision"] == "answer" and other["template"] == "shipping_cost_rates"


def test_while_a_person_is_needed_the_bot_stays_silent(client):
    first = chat(client, "I want to talk to a real person please").json()
    session, token = first["session_id"], first["session_token"]
    assert first["decision"] == "handoff" and "connecting you" in first["replies"][0]["text"]
    after = chat(client, "hello? anyone?", session, token).json()
    assert after["decision"] == "silent" and after["replies"] == []


def test_sessions_are_private(client):
    first = chat(client, "hello").json()
    assert chat(client, "where is my order", first["session_id"]).status_code == 403
    assert chat(client, "where is my order", first["session_id"], "forged-token").status_code == 403
    missing = chat(client, "where is my order", "0" * 32, first["session_token"])
    assert missing.status_code == 404 and "no conversation" in missing.json()["detail"]


def test_asking_for_a_human_hands_off(client):
    body = chat(client, "I want to talk to a real person please").json()
    assert body["intent"]["name"] == "contact_human" and body["decision"] == "handoff"
    assert chat(client, "/contact_human").json()["decision"] == "handoff"


def test_a_quick_reply_payload_picks_its_intent(client):
    body = chat(client, "/return_item").json()
    assert body["intent"] == {"name": "return_item", "confidence": 1.0} and body["decision"] == "answer"


@pytest.mark.parametrize("body, fragment", [
    ({}, "message: Field required"),
    ({"message": ""}, "must not be empty"),
    ({"message": "   \n\t"}, "must not be empty"),
    ({"message": "x" * 2001}, "2001 characters; the limit is 2000"),
    ({"message": 42}, "message: Input should be a valid string"),
    ({"message": ["hi"]}, "message: Input should be a valid string"),
    ({"message": "hi", "session_id": 7}, "session_id: Input should be a valid string"),
    ({"message": "hi", "colour": "red"}, "colour: Extra inputs are not permitted"),
])
def test_bad_requests_get_a_4xx_with_a_message(client, body, fragment):
    response = client.post("/api/chat", json=body)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


def test_malformed_json_and_bytes_are_refused_and_the_server_keeps_serving(client):
    for raw in (b'{"message": ', b"\xff\xfe\x00garbage", b"[1, 2]"):
        response = client.post("/api/chat", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422 and response.json()["detail"]
    assert chat(client, "thanks a lot!").status_code == 200


@contextmanager
def client_with_policy(settings, policy: PolicyConfig):
    """The real model with other policy settings, to reach decisions a confident model rarely makes."""
    app = create_app(settings)
    with TestClient(app) as client:
        app.state.services.holder.model = dataclasses.replace(app.state.services.holder.model, policy=policy)
        yield client


def test_repeated_failures_offer_a_human_then_hand_off(settings):
    """Misunderstood messages in a row: first ask to rephrase, then offer a person, then hand off."""
    with client_with_policy(settings, PolicyConfig(threshold=float("inf"), clarify_margin=0.1)) as client:
        first = chat(client, "blorp zxq").json()
        assert first["decision"] == "fallback" and not first["replies"][0]["buttons"]
        second = chat(client, "fnord", first["session_id"], first["session_token"]).json()
        assert second["decision"] == "fallback"
        assert second["replies"][0]["buttons"] == [{"title": "Talk to a person", "payload": "/contact_human"}]
        third = chat(client, "zorp", first["session_id"], first["session_token"]).json()
        assert third["decision"] == "handoff" and third["status"] == "waiting_for_agent"
        assert chat(client, "hello?", first["session_id"], first["session_token"]).json()["decision"] == "silent"


def stored_language(client, conversation_id: str) -> str | None:
    engine = create_engine(client.app.state.services.settings.db_url)
    with engine.connect() as db:
        language = db.execute(text("select language from conversations where id = :id"),
                              {"id": conversation_id}).scalar()
    engine.dispose()
    return language


@pytest.mark.parametrize(("message", "language", "reply"), [
    ("我的订单在哪里？我已经等了一个星期了", "zh", "正在为您转接人工客服"),
    ("Wo ist meine Bestellung? Ich warte schon seit einer Woche.", "de", "Ich verbinde Sie"),
    ("Mijn pakket is beschadigd aangekomen", "nl", "I'm passing you to a person"),
])
def test_a_message_in_a_language_the_model_does_not_know_goes_to_a_person_at_once(client, message, language, reply):
    """The demo model was trained in English only (its metrics say so): no fallbacks first."""
    answered = chat(client, message).json()
    assert answered["decision"] == "handoff" and answered["status"] == "waiting_for_agent", answered
    assert reply in answered["replies"][0]["text"]
    assert stored_language(client, answered["session_id"]) == language


@pytest.mark.parametrize("message", ["ok", "thx", "NW482913", "jane@example.com", "yes please", "tschüss",
                                     "where is my parcel"])
def test_short_english_messages_are_not_taken_for_another_language(client, message):
    answered = chat(client, message).json()
    assert stored_language(client, answered["session_id"]) is None
    assert all("your language" not in reply["text"] for reply in answered["replies"])


def test_outside_office_hours_a_hand_off_asks_for_an_address_and_leaves_an_offline_message(settings):
    other_day = DAYS[(datetime.now(UTC).weekday() + 2) % 7].title()  # never today (in UTC), so closed now
    closed = settings.model_copy(update={"office_hours": f"{other_day} 09:00-10:00"})
    with TestClient(create_app(closed)) as client:
        first = chat(client, "I want to talk to a real person please").json()
        assert first["decision"] == "handoff" and first["status"] == "waiting_for_agent"
        assert first["replies"][0]["text"].startswith("Our team is offline right now (we are there "
                                                      f"{other_day} 09:00-10:00 (UTC))")
        session, token = first["session_id"], first["session_token"]
        assert chat(client, "my parcel never came", session, token).json()["decision"] == "silent"
        left = chat(client, "you can reach me at jane.doe@example.com", session, token).json()
        assert left["replies"][0]["text"] == "Thank you! We will write to jane.doe@example.com as soon as we are back."
        assert chat(client, "or jd@example.org", session, token).json()["decision"] == "silent"  # once
        with client.app.state.services.sessions() as db:
            row = summary(db, get_conversation(db, session), 0.5)
            slots = get_conversation(db, session).slots
        assert row.offline_message and row.status == "waiting_for_agent"
        assert slots["contact_email"] == "jane.doe@example.com"

        services = client.app.state.services
        with services.sessions.begin() as db:  # an agent handed it back to the bot
            get_conversation(db, session).status = ConversationStatus.BOT
        services.chat.office = None  # and now the team is in
        again = chat(client, "I want to talk to a real person please", session, token).json()
        assert again["status"] == "waiting_for_agent" and "offline" not in again["replies"][0]["text"]
        assert chat(client, "mail me at jd@example.org", session, token).json()["decision"] == "silent"
        with services.sessions() as db:
            assert not summary(db, get_conversation(db, session), 0.5).offline_message


def test_close_intents_get_a_clarifying_question(settings):
    with client_with_policy(settings, PolicyConfig(threshold=float("-inf"), clarify_margin=1.0)) as client:
        body = chat(client, "my refund for the returned shoes").json()
        assert body["decision"] == "clarify" and body["template"] is None
        payloads = [b["payload"] for b in body["replies"][0]["buttons"]]
        assert payloads == [f"/{r['name']}" for r in body["ranking"][:3]]


def test_conversations_survive_a_restart(settings):
    with TestClient(create_app(settings)) as client:
        first = chat(client, "hello").json()
    with TestClient(create_app(settings)) as client:
        again = chat(client, "where is my order?", first["session_id"], first["session_token"])
        assert again.status_code == 200 and again.json()["session_id"] == first["session_id"]


def test_health_and_docs(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["backend"] == "onnx-int8"
    schema = client.get("/openapi.json").json()
    assert "/api/chat" in schema["paths"] and client.get("/docs").status_code == 200
