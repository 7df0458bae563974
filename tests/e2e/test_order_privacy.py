"""Orders are told about and changed only for a visitor who proved they own them (issue: a brand-new session
could cancel a stranger's order and read its tracking code). Through the real API on the real demo bot."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from bot.api.app import create_app
from bot.conversation import actions
from bot.conversation.action_runner import ActionRunner
from bot.conversation.dialogue import HANDOFF_CAPPED_TEXT, ChatService
from bot.conversation.ownership import identity_hash
from bot.conversation.policy import Decision
from bot.desk.desk import get_conversation, reply
from bot.infra.settings import Settings
from bot.infra.store import Agent, Order, make_engine, make_sessionmaker
from tests.helpers.constants import DATA

SECRET = "shop-and-bot-only"


def make_client(registry, tmp_path, db_url: str | None = None, **settings) -> TestClient:
    return TestClient(create_app(Settings(
        registry=registry, db_url=db_url or f"sqlite:///{tmp_path / 'bot.db'}", seed_orders=DATA / "orders.json",
        rate_limit="off", **{"identity_secret": SECRET, **settings})))


@pytest.fixture(scope="module")
def client(demo_registry, tmp_path_factory):
    with make_client(demo_registry, tmp_path_factory.mktemp("privacy")) as client:
        yield client


class Visitor:
    def __init__(self, client: TestClient, identity: dict | None = None):
        self.client, self.identity, self.session, self.token = client, identity, None, None

    def say(self, text: str, expect: int = 200) -> dict:
        body = {"message": text} | ({"session_id": self.session} if self.session else {}) | (
            {"identity": self.identity} if self.identity else {})
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.client.post("/api/chat", json=body, headers=headers)
        assert response.status_code == expect, response.text
        reply = response.json()
        if expect == 200:
            self.session, self.token = reply["session_id"], self.token or reply["session_token"]
        return reply


def texts(reply: dict) -> str:
    return " ".join(r["text"] for r in reply["replies"])


def order(client: TestClient, order_id: str) -> Order:
    with client.app.state.services.sessions() as db:
        return db.get(Order, order_id)


def customer(user_id: str, email: str | None = None) -> dict:
    return {"user_id": user_id, "user_hash": identity_hash(SECRET, user_id)} | ({"email": email} if email else {})


def test_a_stranger_cannot_cancel_an_order_by_naming_it(client):
    stranger = Visitor(client)
    asked = stranger.say("please cancel NW730219")
    assert "e-mail address you used for order NW730219" in texts(asked)
    said_yes = stranger.say("yes")
    assert "cancelled" not in texts(said_yes) and "€" not in texts(said_yes)
    assert order(client, "NW730219").status == "processing"


def test_a_stranger_learns_nothing_about_an_order_by_naming_it(client):
    stranger = Visitor(client)
    reply = texts(stranger.say("where is my order NW482913"))
    assert "DHL" not in reply and "JD014600006281123456" not in reply and "e-mail address" in reply
    wrong = texts(stranger.say("someone@example.com"))
    unknown = texts(Visitor(client).say("where is my order NW000404 my email is someone@example.com"))
    assert wrong.split(" What's")[0] == unknown.split(" What's")[0] == actions.NOT_FOUND_TEXT
    assert "DHL" not in wrong + unknown


def test_the_owner_proves_it_with_the_orders_email_and_cancels_in_the_same_turn(client):
    owner = Visitor(client)
    owner.say("please cancel NW228104")
    assert texts(owner.say("IVAN.PETROV@example.com")) == "Shall I cancel order NW228104? Please answer yes or no."
    done = texts(owner.say("yes"))
    assert "order NW228104 is cancelled" in done and "€74.00" in done
    assert order(client, "NW228104").status == "cancelled"


def test_a_verified_customer_acts_on_their_own_orders_without_an_email_and_on_nobody_elses(client):
    ana = Visitor(client, customer("cust-1001", "ana.costa@example.com"))
    assert "NW482913 is on its way with DHL" in texts(ana.say("where is my order NW482913"))
    refused = texts(ana.say("please cancel NW557902"))
    assert refused.startswith(actions.NOT_FOUND_TEXT) and order(client, "NW557902").status == "processing"
    with client.app.state.services.sessions() as db:
        assert db.get(type(get_conversation(db, ana.session)), ana.session).customer_email == "ana.costa@example.com"


def test_a_wrong_identity_hash_is_refused_and_a_conversation_keeps_its_customer(client):
    forged = {"user_id": "cust-1002", "user_hash": identity_hash("guessed", "cust-1002")}
    refused = Visitor(client, forged).say("cancel NW730219", expect=403)
    assert "user_hash is not the HMAC-SHA256 of user_id" in refused["detail"]
    ana = Visitor(client, customer("cust-1001"))
    ana.say("hello")
    ana.identity = customer("cust-1002")  # a valid hash for someone else, on Ana's conversation
    assert "belongs to another signed-in customer" in ana.say("cancel NW730219", expect=403)["detail"]


def test_an_identity_is_refused_when_verification_is_not_configured(demo_registry, tmp_path):
    with make_client(demo_registry, tmp_path, identity_secret=None) as plain:
        refused = Visitor(plain, customer("cust-1001")).say("where is NW482913", expect=403)
    assert "identity verification is not enabled" in refused["detail"]


def test_five_wrong_emails_hand_the_conversation_to_a_person(client):
    guesser = Visitor(client)
    guesser.say("where is my order NW918273")
    for attempt in range(4):
        reply = guesser.say(f"guess{attempt}@example.com")
        assert reply["status"] == "bot" and texts(reply).startswith(actions.NOT_FOUND_TEXT)
        guesser.say("NW918273")
    fifth = guesser.say("guess4@example.com")
    assert fifth["status"] == "waiting_for_agent" and texts(fifth) == actions.LOCKED_OUT_TEXT, fifth


def test_strangers_failed_tries_lock_anonymous_askers_out_of_an_order_but_not_its_verified_owner(client):
    for attempt in range(5):
        Visitor(client).say(f"where is my order NW503317 my email is x{attempt}@evil.example")
    locked = Visitor(client).say("where is my order NW503317")
    assert locked["status"] == "waiting_for_agent" and texts(locked) == actions.LOCKED_OUT_TEXT
    jo = Visitor(client, customer("cust-1010"))
    assert "NW503317 is on its way with DHL" in texts(jo.say("where is my order NW503317"))


def test_a_verified_conversation_needs_its_identity_on_every_turn(client):
    fay = Visitor(client, customer("cust-1006"))
    assert "UPS" in texts(fay.say("where is my order NW918273"))
    fay.identity = None  # signed out of the shop, or someone who found the session token
    refused = fay.say("where is my order NW918273", expect=403)
    assert "belongs to a signed-in customer" in refused["detail"]


def test_a_cancellation_is_undone_when_its_turn_is_not_stored(demo_registry, tmp_path):
    """The order changes in the turn's own transaction: if storing the turn fails, the order is unchanged."""
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    sessions = make_sessionmaker(engine)
    from bot.conversation.orders import seed_orders
    from bot.model.reload import ModelHolder

    seed_orders(sessions, DATA / "orders.json")
    holder = ModelHolder(demo_registry, "auto")
    actions.configure(lambda: holder.model.retriever.book, sessions)
    chat = ChatService(sessions, lambda: holder.model)
    first = chat.handle("please cancel NW812034 my email is gus.lindqvist@example.com")
    assert "Shall I cancel order NW812034" in first.replies[0].text

    written = []

    @event.listens_for(engine, "before_cursor_execute")
    def fail_storing_the_turn(_connection, _cursor, statement, *_):
        written.append(statement.split()[0:3])
        if statement.startswith("INSERT INTO messages"):
            raise RuntimeError("the store failed")

    with pytest.raises(RuntimeError, match="the store failed"):
        chat.handle("yes", first.session_id, first.session_token)
    event.remove(engine, "before_cursor_execute", fail_storing_the_turn)
    assert ["UPDATE", "orders", "SET"] in written  # the order was changed, then rolled back with the turn
    with sessions() as db:
        assert db.get(Order, "NW812034").status == "processing"
    engine.dispose()


def test_new_conversations_and_handoffs_are_capped_per_client_address(demo_registry, tmp_path):
    with make_client(demo_registry, tmp_path, new_conversation_cap="3/hour", handoff_cap="1/hour") as capped:
        first = Visitor(capped)
        assert first.say("I want to talk to a person")["status"] == "waiting_for_agent"
        second = Visitor(capped)
        refused = second.say("I want to talk to a person")
        assert refused["status"] == "bot" and texts(refused) == HANDOFF_CAPPED_TEXT
        Visitor(capped).say("hi")
        too_many = Visitor(capped).say("hi", expect=429)
        assert "too many new conversations" in too_many["detail"]
        assert second.say("hello again")["status"] == "bot"  # an open conversation goes on


class AgentStepsIn(ActionRunner):
    """Runs the agent's reply (through the same locking as the API's) in another thread while the visitor's
    turn is half-way, and waits a moment for it: the race, made to happen every time."""

    def __init__(self, sessions, conversation_id: str, agent_id: int):
        super().__init__()
        self.sessions, self.conversation_id, self.agent_id = sessions, conversation_id, agent_id
        self.thread: threading.Thread | None = None

    def _agent_replies(self) -> None:
        with self.sessions.begin() as db:
            conversation = get_conversation(db, self.conversation_id, lock=True)
            reply(db, conversation, db.get(Agent, self.agent_id), "Hi, Alice here. I'll take it from here.")

    def run(self, *args, **kwargs):
        if self.thread is None:
            self.thread = threading.Thread(target=self._agent_replies)
            self.thread.start()
            self.thread.join(timeout=1.0)  # PostgreSQL: the agent waits on the turn's row lock
        return super().run(*args, **kwargs)


def test_the_bot_never_replies_after_an_agent_took_over(demo_registry, db_url):
    from bot.conversation.orders import seed_orders
    from bot.model.reload import ModelHolder

    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    seed_orders(sessions, DATA / "orders.json")
    with sessions.begin() as db:
        agent = Agent(username="alice", display_name="Alice", password_hash="-")
        db.add(agent)
        db.flush()
        agent_id = agent.id
    holder = ModelHolder(demo_registry, "auto")
    actions.configure(lambda: holder.model.retriever.book, sessions)
    first = ChatService(sessions, lambda: holder.model).handle("hello")
    runner = AgentStepsIn(sessions, first.session_id, agent_id)
    turn = ChatService(sessions, lambda: holder.model, actions=runner).handle(  # runs action_handoff
        "I want to talk to a person", first.session_id, first.session_token)
    assert runner.thread is not None, "the agent stepped in while an action ran"
    runner.thread.join(timeout=30)
    with sessions() as db:
        messages = [(m.role, m.text) for m in db.get(type(get_conversation(db, first.session_id)),
                                                       first.session_id).messages]
    roles = [role for role, _ in messages]
    assert roles[-1] == "agent" or turn.decision is Decision.SILENT, messages  # no bot reply after the agent's
    assert "bot" not in roles[roles.index("agent"):], messages
    engine.dispose()
