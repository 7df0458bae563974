"""The intents page's figures and example proposals (bot/desk/intents.py) on a real store
(tests/unit/test_intents.py on SQLite, tests/e2e/test_intents.py on PostgreSQL; the page with a real model:
tests/e2e/browser/test_intent_page.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.desk import intents
from bot.desk.desk import DeskError
from bot.infra.store import Agent, Conversation, Message, ProposalStatus, make_engine, make_sessionmaker
from bot.model.templates import Template, TemplateBook

LABELS = ["invoice", "order_status"]
BOOK = TemplateBook(slots={}, templates=[Template(id="invoice_download", intent="invoice",
                                                  examples=["where is my invoice"], text="Under Orders.")])


class IntentCases:
    @pytest.fixture
    def sessions(self, db_url):
        engine = make_engine(db_url)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as db:
            db.add_all([Agent(id=1, username="ada", display_name="Ada", password_hash="-", role="admin"),
                        Agent(id=2, username="bob", display_name="Bob", password_hash="-")])
            conversation = Conversation(token_hash="x" * 64, slots={}, status="bot")
            db.add(conversation)
            db.flush()
            now = datetime.now(UTC)
            db.add_all([Message(conversation_id=conversation.id, role="user", text=t, intent=i, confidence=c,
                                created_at=at)
                        for t, i, c, at in [("invoice please", "invoice", 0.9, now),
                                            ("bill?", "invoice", 0.2, now - timedelta(days=2)),
                                            ("old invoice", "invoice", 0.9, now - timedelta(days=20)),
                                            ("where is it", "order_status", 0.95, now)]])
        yield sessions
        engine.dispose()

    def test_each_intent_shows_its_traffic_review_items_answers_and_examples(self, sessions):
        with sessions.begin() as db:
            intents.propose(db, LABELS, "invoice", ["I need a receipt"], 2, approve=False)
            intents.propose(db, LABELS, "invoice", ["VAT bill please"], 1, approve=True)
        with sessions() as db:
            rows = {r.name: r for r in intents.overview(db, LABELS, None, BOOK, low_confidence=0.5)}
        invoice = rows["invoice"]
        assert (invoice.chosen, invoice.to_review, invoice.answers) == (2, 1, ["invoice_download"])
        assert invoice.answer_examples == ["where is my invoice"] and invoice.precision is None
        assert [(e.text, e.status, e.agent) for e in invoice.examples] == [
            ("VAT bill please", ProposalStatus.APPROVED, "Ada"), ("I need a receipt", ProposalStatus.PROPOSED, "Bob")]
        assert (rows["order_status"].chosen, rows["order_status"].examples) == (1, [])

    def test_an_example_is_for_an_intent_the_model_knows_and_an_admin_decides(self, sessions):
        with sessions.begin() as db, pytest.raises(DeskError) as unknown:
            intents.propose(db, LABELS, "gift_wrap", ["wrap it"], 2, approve=False)
        assert unknown.value.status == 404
        with sessions.begin() as db:
            [example] = intents.propose(db, LABELS, "invoice", ["receipt please"], 2, approve=False)
        with sessions.begin() as db:
            assert intents.decide(db, LABELS, example.id, False, 1).status is ProposalStatus.REJECTED
        with sessions.begin() as db, pytest.raises(DeskError) as missing:
            intents.decide(db, LABELS, example.id + 99, True, 1)
        assert missing.value.status == 404
        with sessions.begin() as db:
            [again] = intents.propose(db, LABELS, "invoice", ["Receipt please", "receipt please"], 2,
                                      approve=False)  # a rejected text may be proposed again, once
            assert again.text == "Receipt please"
            assert intents.propose(db, LABELS, "invoice", ["RECEIPT PLEASE"], 2, approve=False) == []
        with sessions.begin() as db, pytest.raises(DeskError) as gone:
            intents.decide(db, ["order_status"], again.id, True, 1)  # the served model lost the intent
        assert gone.value.status == 409
