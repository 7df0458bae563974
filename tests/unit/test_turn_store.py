"""How a visitor's turn writes its conversation back (bot/conversation/turn_store.py): one UPDATE of only what the turn
changed, guarded by the status the turn started from, and the turn's messages in one INSERT."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot.conversation.dialogue import ChatService
from bot.conversation.turn_store import ConversationChanged, load_for_turn, save_turn
from bot.infra.store import Conversation, ConversationStatus, Message, make_engine, make_sessionmaker, utcnow


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    yield engine, make_sessionmaker(engine)
    engine.dispose()


def open_conversation(sessions) -> str:
    conversation, _token = ChatService._new("203.0.113.5")
    with sessions.begin() as db:
        db.add(conversation)
    return conversation.id


def visitor_message(conversation_id: str) -> Message:
    return Message(conversation_id=conversation_id, role="user", text="hello", created_at=utcnow(), agent=None)


def test_a_column_the_turn_did_not_change_keeps_what_another_writer_stored_meanwhile(store):
    """SQLite: the turn reads its conversation before it takes the write lock, so writing back every column
    would undo a concurrent turn's change (here: the customer a second tab's identity bound)."""
    engine, sessions = store
    conversation_id = open_conversation(sessions)
    with sessions() as turn:
        mine = load_for_turn(turn, conversation_id)
        assert mine is not None
        with sessions.begin() as other:
            other.get(Conversation, conversation_id).customer_id = "cust-1001"
        mine.failures, mine.updated_at = 1, utcnow()
        stored = [visitor_message(conversation_id)]
        save_turn(turn, mine, ConversationStatus.BOT, stored)
        turn.commit()
    with sessions() as db:
        saved = db.get(Conversation, conversation_id)
        assert (saved.customer_id, saved.failures) == ("cust-1001", 1)
        assert [m.id for m in saved.messages] == [stored[0].id]
    with engine.connect() as connection:  # no ranking or buttons: SQL NULL (JSON null would read the same)
        assert connection.execute(text("SELECT ranking IS NULL, buttons IS NULL FROM messages")).one() == (1, 1)


def test_a_turn_whose_conversation_changed_status_meanwhile_writes_nothing(store):
    _engine, sessions = store
    conversation_id = open_conversation(sessions)
    with sessions() as turn:
        mine = load_for_turn(turn, conversation_id)
        assert mine is not None
        with sessions.begin() as other:  # an agent took it over
            other.get(Conversation, conversation_id).status = ConversationStatus.WITH_AGENT
        mine.failures, mine.updated_at = 1, utcnow()
        with pytest.raises(ConversationChanged):
            save_turn(turn, mine, ConversationStatus.BOT, [visitor_message(conversation_id)])
        turn.rollback()
    with sessions() as db:
        saved = db.get(Conversation, conversation_id)
        assert (saved.status, saved.failures, saved.messages) == (ConversationStatus.WITH_AGENT, 0, [])
