"""The harvest trusts only what people vouch for and caps what strangers can add: a thumbs-up is never a
label, visitors' messages are deduplicated and capped per conversation, client and day, read in a window and
streamed; and it only reads the store, never migrating it. On the store that `db_url` names (the unit tier's
SQLite, the e2e tier's PostgreSQL: tests/unit/test_harvest.py, tests/e2e/test_harvest.py), written with the ORM
as the API would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

import distill.harvest
from bot.conversation.dialogue import ChatService
from bot.infra.guards import client_hash
from bot.infra.store import (
    Agent,
    Conversation,
    Correction,
    ExampleProposal,
    Message,
    NewIntent,
    ProposalStatus,
    make_engine,
    make_sessionmaker,
)
from distill.data import Example
from distill.harvest import HarvestLimits, Labelled, LabelSource, NewIntentSpec, collect
from distill.training_set import build
from tests.helpers.databases import migrated_to

DAY = datetime(2026, 12, 1, 9, tzinfo=UTC)


class Store:
    """Writes conversations the way the API does, each message a minute after the last."""

    def __init__(self, db_url: str):
        self.engine = make_engine(db_url)
        self.sessions = make_sessionmaker(self.engine)
        self.clock = DAY

    def conversation(self, texts: list[str], client: str | None = None, at: datetime | None = None,
                     thumbs_up: bool = False, intent: str = "greeting") -> list[int]:
        """A conversation of these visitor messages (each answered by the bot when `thumbs_up`, and the answer
        thumbed up); the visitor messages' ids."""
        self.clock = at or self.clock
        ids = []
        with self.sessions.begin() as db:
            conversation = Conversation(token_hash="x" * 64, slots={}, client_hash=client_hash(client),
                                        created_at=self.clock)
            db.add(conversation)
            db.flush()
            for text in texts:
                message = self._message(db, conversation.id, "user", text, intent=intent)
                ids.append(message.id)
                if thumbs_up:
                    self._message(db, conversation.id, "bot", "Here you go.", decision="answer", feedback="up")
        return ids

    def _message(self, db, conversation_id: str, role: str, text: str, **values) -> Message:
        self.clock += timedelta(minutes=1)
        message = Message(conversation_id=conversation_id, role=role, text=text, created_at=self.clock, **values)
        db.add(message)
        db.flush()
        return message

    def close(self) -> None:
        self.engine.dispose()


def phrasings(prefix: str, n: int) -> list[str]:
    """n messages that stay distinct once normalised (digits would all become 0)."""
    return [f"{prefix} question {'abcdefghijklmnopqrstuvwxyz'[i % 26]}{'xyz'[i // 26]}" for i in range(n)]


class HarvestCases:
    """The harvest of the store that `db_url` names."""

    @pytest.fixture
    def store(self, db_url):
        store = Store(db_url)
        yield store
        store.close()

    def test_a_thumbs_up_flood_labels_nothing_and_overrides_nothing(self, store, db_url):
        base = [Example("how much is shipping", "shipping_cost")]
        for _ in range(30):  # a script: ten messages and ten thumbs-up a conversation, thirty conversations
            store.conversation(["how much is shipping", *phrasings("spam", 9)], client="198.51.100.7", thumbs_up=True,
                               intent="greeting")
        store.close()
        harvest = collect(db_url, None)
        assert harvest.thumbs_up == 300 and harvest.labelled == []
        assert "thumbs_up" not in harvest.new_since
        built = build(base, harvest, [], holdout_fraction=0.2)
        assert {e.text: e.intent for e in built.train} == {"how much is shipping": "shipping_cost"}
        assert built.added == {} and built.waiting_for_admin == []

    def test_labels_come_from_agents_and_approved_intents_only(self, store, db_url):
        with store.sessions.begin() as db:
            db.add_all([Agent(id=1, username="bob", display_name="Bob", password_hash="x"),
                        Agent(id=2, username="alice", display_name="Alice", password_hash="x")])
            db.add(NewIntent(name="gift_wrapping", answer="We wrap.", buttons=[], examples=["gift wrap please"],
                             status=ProposalStatus.APPROVED, decided_by=2, created_at=DAY))
            db.add(NewIntent(name="store_hours", answer="9 to 5.", buttons=[], examples=["when are you open"],
                             created_at=DAY))
        ids = store.conversation(["wo ist mein Paket", "thanks", "my money back?", "/return_item", "something new"],
                                 at=DAY + timedelta(hours=1))
        later = DAY + timedelta(hours=2)
        with store.sessions.begin() as db:
            db.add(Correction(message_id=ids[0], text="wo ist mein Paket", intent="order_status",
                              predicted_intent="greeting", agent_id=1, created_at=later))
            db.add(Correction(message_id=ids[1], text="thanks", intent="greeting", predicted_intent="greeting",
                              agent_id=1, created_at=later))
            db.add(Correction(message_id=ids[2], text="my money back?", intent="refund_status",
                              predicted_intent="greeting", agent_id=1, approved_by=2, approved_at=later,
                              created_at=DAY))  # made before the window, approved in it: new
        store.close()
        harvest = collect(db_url, since=DAY + timedelta(minutes=30))
        assert harvest.labelled == [
            Labelled("gift wrap please", "gift_wrapping", LabelSource.NEW_INTENT, approved=True),
            Labelled("wo ist mein Paket", "order_status", LabelSource.CORRECTION, "greeting", approved=False,
                     fresh=True),
            Labelled("thanks", "greeting", LabelSource.CONFIRMATION, "greeting", approved=False, fresh=True),
            Labelled("my money back?", "refund_status", LabelSource.CORRECTION, "greeting", approved=True, fresh=True)]
        earlier = collect(db_url, since=DAY + timedelta(hours=3))  # the same labels, none of them new any more
        assert [item.fresh for item in earlier.labelled] == [False] * 4
        assert harvest.new_intents == [NewIntentSpec("gift_wrapping", "We wrap.", [], ["gift wrap please"])]
        assert harvest.unlabelled == ["something new"]  # labelled texts and a button press are not for the teacher
        assert harvest.dropped["labelled"] == 3 and harvest.dropped["button"] == 1
        assert harvest.new_since == {"correction": 2, "confirmation": 1, "new_intent": 0, "example": 0,
                                     "unlabelled": 1}

    def test_only_examples_an_admin_approved_are_labels(self, store, db_url):
        """An agent's example of an intent the model knows is learned once approved, and may then overturn a
        base example as an approved correction does."""
        with store.sessions.begin() as db:
            db.add_all([Agent(id=1, username="bob", display_name="Bob", password_hash="x"),
                        Agent(id=2, username="alice", display_name="Alice", password_hash="x")])
            db.add_all([
                ExampleProposal(intent="invoice", text="I need a receipt for my taxes", agent_id=1, created_at=DAY,
                                status=ProposalStatus.APPROVED, decided_by=2, decided_at=DAY + timedelta(hours=2)),
                ExampleProposal(intent="invoice", text="my order is late", agent_id=1, created_at=DAY,
                                status=ProposalStatus.APPROVED, decided_by=2, decided_at=DAY),
                ExampleProposal(intent="invoice", text="send me a bill", agent_id=1, created_at=DAY),
                ExampleProposal(intent="invoice", text="where is my parcel", agent_id=1, created_at=DAY,
                                status=ProposalStatus.REJECTED, decided_by=2, decided_at=DAY),
                ExampleProposal(intent="gift_wrap", text="wrap it please", agent_id=1, created_at=DAY,
                                status=ProposalStatus.APPROVED, decided_by=2, decided_at=DAY)])
        store.close()
        harvest = collect(db_url, since=DAY + timedelta(hours=1))
        assert harvest.labelled == [
            Labelled("my order is late", "invoice", LabelSource.EXAMPLE, approved=True, fresh=False),
            Labelled("wrap it please", "gift_wrap", LabelSource.EXAMPLE, approved=True, fresh=False),
            Labelled("I need a receipt for my taxes", "invoice", LabelSource.EXAMPLE, approved=True, fresh=True)]
        assert harvest.new_since["example"] == 1
        base = [Example("my order is late", "order_status"), Example("where is my invoice", "invoice")]
        built = build(base, harvest, [], holdout_fraction=0.2)
        assert {e.text: e.intent for e in built.train} == {
            "my order is late": "invoice", "where is my invoice": "invoice", "I need a receipt for my taxes": "invoice"}
        assert built.added["example"] == 2 and built.added["contradicts_base_applied"] == 1
        assert built.added["example_unknown_intent"] == 1  # gift_wrap: no such intent in the training data

    def test_caps_per_conversation_per_client_and_day_and_per_day_hold(self, store, db_url):
        limits = HarvestLimits(per_conversation=5, per_client_per_day=8, per_day=20)
        store.conversation(phrasings("aa", 7), client="203.0.113.1")  # 5 kept, 2 over the conversation's cap
        store.conversation(phrasings("ab", 5), client="203.0.113.1")  # 3 kept: the client's 8 a day
        store.conversation(phrasings("ac", 5), client="2001:db8::1")  # 5 kept
        store.conversation(phrasings("ad", 5), client="2001:db8::2")  # the same /64, the same client: 3 kept
        store.conversation(phrasings("ba", 5), client="198.51.100.9")  # 4 kept: 20 a day in all
        store.conversation(phrasings("bb", 3), client="198.51.100.10")  # none kept
        store.conversation(phrasings("na", 5), at=DAY + timedelta(days=1))  # the next day: the caps start again
        store.conversation(phrasings("nb", 5))  # no client hash: one shared "unknown" client, 3 kept
        store.close()
        harvest = collect(db_url, None, limits=limits)
        assert harvest.unlabelled == (phrasings("aa", 5) + phrasings("ab", 3) + phrasings("ac", 5) + phrasings("ad", 3)
                                      + phrasings("ba", 4) + phrasings("na", 5) + phrasings("nb", 3))
        assert harvest.dropped == {"button": 0, "too_short": 0, "labelled": 0, "duplicate": 0, "per_conversation": 2,
                                   "per_client": 6, "per_day": 4}
        assert harvest.new_since["unlabelled"] == 28

    def test_two_runs_in_one_day_share_the_days_caps(self, store, db_url):
        """A run at noon took the morning's messages; the evening run counts them against the day's caps (and
        takes none of them again), so a client gets one day's allowance, not two."""
        limits = HarvestLimits(per_conversation=50, per_client_per_day=8, per_day=100)
        midnight = DAY.replace(hour=0)
        store.conversation(phrasings("am", 6), client="203.0.113.1", at=midnight + timedelta(hours=8))
        store.conversation(phrasings("pm", 6), client="203.0.113.1", at=midnight + timedelta(hours=18))
        store.close()
        noon = midnight + timedelta(hours=12)
        assert collect(db_url, None, until=noon, limits=limits).unlabelled == phrasings("am", 6)
        evening = collect(db_url, noon, limits=limits)
        assert evening.unlabelled == phrasings("pm", 2) and evening.dropped["per_client"] == 4

    def test_near_duplicates_collapse_and_cost_no_allowance(self, store, db_url):
        store.conversation(["Where is my order NW123456?", "where   is my ORDER nw654321",
                            "where is my order, nw000001!", "ok", "?!", "/greet", "Wo ist mein Paket",
                            "wo ist mein paket"], client="203.0.113.1")
        store.close()
        harvest = collect(db_url, None, limits=HarvestLimits(per_conversation=2))
        assert harvest.unlabelled == ["Where is my order NW123456?", "Wo ist mein Paket"]
        assert harvest.dropped["duplicate"] == 3 and harvest.dropped["too_short"] == 2
        assert harvest.dropped["button"] == 1 and harvest.dropped["per_conversation"] == 0

    def test_only_messages_in_since_until_are_read(self, store, db_url):
        for hours, text in enumerate(["before the window", "at since", "inside", "at until", "after"]):
            store.conversation([text], at=DAY + timedelta(hours=hours))
        store.close()
        since, until = DAY + timedelta(hours=1, minutes=1), DAY + timedelta(hours=3, minutes=1)  # messages are at :01
        assert collect(db_url, since, until).unlabelled == ["at since", "inside"]
        assert collect(db_url, until).unlabelled == ["at until", "after"]  # the next run starts exactly there
        assert collect(db_url, None, since).unlabelled == ["before the window"]

    def test_visitors_messages_are_streamed(self, store, db_url, monkeypatch):
        for i in range(5):
            store.conversation(phrasings(f"c{'abcde'[i]}", 11), client=f"203.0.113.{i}")
        store.close()
        monkeypatch.setattr(distill.harvest, "STREAM_BATCH", 7)
        streamed = []

        def seen(_connection, _cursor, statement, _parameters, context, _many):
            if "FROM messages JOIN conversations" in statement:
                streamed.append(context.execution_options.get("yield_per"))

        event.listen(Engine, "before_cursor_execute", seen)
        try:
            harvest = collect(db_url, None)
        finally:
            event.remove(Engine, "before_cursor_execute", seen)
        assert streamed == [7]
        assert harvest.unlabelled == [t for i in range(5) for t in phrasings(f"c{'abcde'[i]}", 11)]

    def test_a_new_conversation_keeps_a_hash_of_its_clients_address_never_the_address(self, store):
        with store.sessions.begin() as db:
            conversation, _token = ChatService._new("203.0.113.5")
            unknown, _token = ChatService._new(None)
            db.add_all([conversation, unknown])
        with store.sessions() as db:
            assert db.get(Conversation, conversation.id).client_hash == client_hash("203.0.113.5")
            assert db.get(Conversation, unknown.id).client_hash is None
            stored = db.scalars(select(Conversation.client_hash).where(Conversation.client_hash.is_not(None))).one()
        assert len(stored) == 32 and "203.0.113.5" not in stored
        assert client_hash("2001:db8::1") == client_hash("2001:db8::ffff")  # an IPv6 client is its /64 (client_key)

    # ------------------------------------------------------------ the harvest only reads, and never migrates

    def test_a_write_through_the_harvests_engine_fails(self, db_url):
        from sqlalchemy import inspect, text
        from sqlalchemy.exc import DBAPIError

        from distill.harvest import read_only_engine

        api = make_engine(db_url)  # the API made and migrated the store, and a visitor wrote
        with make_sessionmaker(api).begin() as db:
            db.add(Conversation(id="c1", token_hash="x" * 64, slots={}))
            db.add(Message(conversation_id="c1", role="user", text="where is my parcel"))
        api.dispose()
        engine = read_only_engine(db_url)
        try:
            for statement in ("DELETE FROM messages", "CREATE TABLE mallory (x INTEGER)"):
                with pytest.raises(DBAPIError, match="read-?only"), engine.begin() as connection:
                    connection.execute(text(statement))
            with engine.connect() as connection:
                assert connection.execute(text("SELECT count(*) FROM messages")).scalar() == 1
                assert "mallory" not in inspect(connection).get_table_names()
        finally:
            engine.dispose()
        assert collect(db_url, None).unlabelled == ["where is my parcel"]  # reading works

    def test_the_harvest_refuses_a_store_that_is_not_migrated_and_does_not_migrate_it(self, db_url):
        from sqlalchemy import create_engine, inspect, text

        from distill.harvest import StoreError

        migrated_to(db_url, "0001")  # a store an older release made; the new API has not started on it yet
        with pytest.raises(StoreError, match="schema is at revision 0001, this code reads .*once the API has started"):
            collect(db_url, None)
        engine = create_engine(db_url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
            assert "corrections" not in inspect(connection).get_table_names()
        engine.dispose()
