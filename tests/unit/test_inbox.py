"""The inbox's query seams: every filter in SQL (so `total` and the pages agree), one grouped query per page
rather than a few per row, and conversation statuses as an enum."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from bot.desk import agents, desk
from bot.desk.views import ConversationOut
from bot.infra.events import DESK
from bot.infra.store import Conversation, ConversationStatus, Message, make_engine, make_sessionmaker

LOW = 0.5


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    yield make_sessionmaker(engine)
    engine.dispose()


def _add(db, confidence: float, feedback: str | None = None) -> Conversation:
    conversation = Conversation(token_hash="x" * 64, slots={})
    db.add(conversation)
    db.flush()
    db.add_all([Message(conversation_id=conversation.id, role="user", text="hi", intent="greeting",
                        confidence=confidence),
                Message(conversation_id=conversation.id, role="bot", text="hello", feedback=feedback)])
    return conversation


def test_without_low_confidence_pages_are_full_and_total_counts_only_matches(sessions):
    with sessions.begin() as db:
        for confidence in (0.9, 0.2, 0.8, 0.1, 0.7, 0.95):
            _add(db, confidence)
    with sessions() as db:
        total, first = desk.find_conversations(db, low_confidence=False, threshold=LOW, limit=2)
        _, second = desk.find_conversations(db, low_confidence=False, threshold=LOW, limit=2, offset=2)
        rows = desk.summaries(db, first + second, LOW)
    assert total == 4
    assert len(first) == len(second) == 2
    assert not any(row.low_confidence for row in rows)
    with sessions() as db:
        assert desk.find_conversations(db, low_confidence=True, threshold=LOW)[0] == 2


def _statements(sessions, work) -> int:
    count = 0

    def counted(*_args):
        nonlocal count
        count += 1

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", counted)
    try:
        with sessions() as db:
            work(db)
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count


def test_an_inbox_page_costs_the_same_queries_for_2_rows_as_for_40(sessions):
    with sessions.begin() as db:
        agent = agents.create_agent(db, "alice", "a long password", "Alice")
        for i in range(40):
            conversation = _add(db, 0.3 + i / 100, "down" if i % 3 == 0 else None)
            if i % 2:
                conversation.agent_id, conversation.status = agent.id, ConversationStatus.WITH_AGENT

    def page(limit: int):
        def work(db):
            _, rows = desk.find_conversations(db, limit=limit)
            shown = desk.summaries(db, rows, LOW)
            assert len(shown) == limit and all(isinstance(row, ConversationOut) for row in shown)
        return work

    assert _statements(sessions, page(2)) == _statements(sessions, page(40)) <= 4


def test_a_summary_says_what_the_rows_messages_say(sessions):
    with sessions.begin() as db:
        quiet = Conversation(token_hash="x" * 64, slots={})
        db.add(quiet)
        unsure = _add(db, 0.2, "down")
    with sessions() as db:
        shown = {row.id: row for row in desk.summaries(db, [db.get_one(Conversation, unsure.id),
                                                           db.get_one(Conversation, quiet.id)], LOW)}
    assert (shown[unsure.id].messages, shown[unsure.id].lowest_confidence) == (1, 0.2)
    assert shown[unsure.id].low_confidence and shown[unsure.id].thumbs_down
    assert shown[unsure.id].last_message is not None and shown[unsure.id].last_message.text == "hello"
    assert (shown[quiet.id].messages, shown[quiet.id].last_message, shown[quiet.id].thumbs_down) == (0, None, False)


def test_statuses_are_an_enum_in_the_store_the_counts_and_the_events(sessions):
    with sessions.begin() as db:
        alice = agents.create_agent(db, "alice", "a long password", "Alice")
        conversation = _add(db, 0.9)
        events = desk.take_over(db, conversation, alice)
    with sessions() as db:
        stored = db.get_one(Conversation, conversation.id)
        assert stored.status is ConversationStatus.WITH_AGENT
        counts = desk.counts(db)
    assert set(counts) == set(ConversationStatus) and counts[ConversationStatus.WITH_AGENT] == 1
    assert events[0].channels[-1] == DESK and events[0].payload["status"] == "with_agent"
    assert type(events[0].payload["status"]) is str  # JSON for the bus, not the enum
