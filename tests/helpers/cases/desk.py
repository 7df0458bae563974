"""The agents' operations on the store itself (the unit tier's SQLite, the e2e tier's PostgreSQL:
tests/unit/test_desk.py, tests/e2e/test_desk.py): inbox filters, take over, reply, notes, hand back, resolve,
relabel, review queue, accounts and tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.desk import agents, desk
from bot.infra.store import Agent, Conversation, Correction, Message, make_engine, make_sessionmaker

LOW = 0.5


def _conversation(db, *turns, status="bot", created=None):
    """turns: (role, text, intent, confidence, feedback)"""
    conversation = Conversation(token_hash="x" * 64, slots={}, status=status,
                                created_at=created or datetime.now(UTC))
    db.add(conversation)
    db.flush()
    for role, text, intent, confidence, feedback in turns:
        db.add(Message(conversation_id=conversation.id, role=role, text=text, intent=intent,
                       confidence=confidence, feedback=feedback))
    db.flush()
    return conversation


class DeskStoreCases:
    """The desk's and the accounts' functions on the store that `db_url` names."""

    @pytest.fixture
    def sessions(self, db_url):
        engine = make_engine(db_url)
        yield make_sessionmaker(engine)
        engine.dispose()

    def test_inbox_filters(self, sessions):
        with sessions.begin() as db:
            alice = agents.create_agent(db, "alice", "a long password", "Alice")
            sure = _conversation(db, ("user", "where is my parcel", "order_status", 0.95, None),
                                 ("bot", "It is on its way", None, None, "down"))
            unsure = _conversation(db, ("user", "hmm 100% off_sale?", "discount_code", 0.3, None),
                                   status="waiting_for_agent")
            old = _conversation(db, ("user", "hello", "greeting", 0.9, None), status="resolved",
                                created=datetime.now(UTC) - timedelta(days=10))
            ids = dict(sure=sure.id, unsure=unsure.id, old=old.id)
            desk.take_over(db, unsure, alice)

        def found(**filters):
            with sessions() as db:
                total, rows = desk.find_conversations(db, **filters)
                assert total == len(rows)
                return {name for name, cid in ids.items() if cid in {r.id for r in rows}}

        assert found() == {"sure", "unsure", "old"}
        assert found(status="with_agent") == {"unsure"}
        assert found(low_confidence=True, threshold=LOW) == {"unsure"}
        assert found(low_confidence=False, threshold=LOW) == {"sure", "old"}  # in SQL: `total` counts only these
        assert found(intent="order_status") == {"sure"}
        assert found(thumbs_down=True) == {"sure"} and found(thumbs_down=False) == {"unsure", "old"}
        assert found(since=datetime.now(UTC) - timedelta(days=1)) == {"sure", "unsure"}
        assert found(until=datetime.now(UTC) - timedelta(days=1)) == {"old"}
        assert found(text="PARCEL") == {"sure"}
        assert found(text="100%") == {"unsure"} and found(text="off_") == {"unsure"}  # LIKE wildcards are literal
        with sessions() as db:
            assert found(agent_id=db.scalar(select(Agent.id))) == {"unsure"}
            assert desk.counts(db) == {"bot": 1, "waiting_for_agent": 0, "with_agent": 1, "resolved": 1}

    def test_take_reply_note_hand_back_resolve(self, sessions):
        with sessions.begin() as db:
            alice = agents.create_agent(db, "alice", "a long password", "Alice")
            bob = agents.create_agent(db, "bob", "a long password", "Bob")
            conversation = _conversation(db, ("user", "a person please", "contact_human", 0.99, None),
                                         status="waiting_for_agent")
            events = desk.take_over(db, conversation, alice)
            assert [e.payload["status"] for e in events] == ["with_agent"]
            with pytest.raises(desk.DeskError, match="Alice already has"):
                desk.take_over(db, conversation, bob)
            with pytest.raises(desk.DeskError, match="Alice has"):
                desk.resolve(db, conversation, bob)
            message, events = desk.reply(db, conversation, alice, "<b>Hi</b>, I'm Alice")
            assert message.role == "agent" and {e.payload["type"] for e in events} == {"message"}
            note, events = desk.add_note(db, conversation, alice, "private")
            assert all(e.channels == ("desk",) for e in events)  # never on the visitor's channel
            desk.hand_back(db, conversation, alice)
            assert conversation.status == "bot" and conversation.agent_id is None
            with pytest.raises(desk.DeskError, match="already has"):
                desk.hand_back(db, conversation, alice)
            desk.resolve(db, conversation, bob)
            assert conversation.status == "resolved"
            shown = desk.transcript(db, conversation, LOW)
            assert shown.transcript[-1].text == "<b>Hi</b>, I'm Alice" and shown.notes[0].text == "private"

    def test_relabel_keeps_one_correction_per_message_and_empties_the_review_queue(self, sessions):
        with sessions.begin() as db:
            alice = agents.create_agent(db, "alice", "a long password", "Alice")
            conversation = _conversation(db, ("user", "money back for shoes", "return_item", 0.4, None),
                                         ("bot", "Here is how to return", None, None, None),
                                         ("user", "thanks", "thanks", 0.97, None),
                                         ("bot", "You're welcome", None, None, "down"))
            user_ids = [m.id for m in conversation.messages if m.role == "user"]
            bot_id = next(m.id for m in conversation.messages if m.role == "bot")
            queue = [m.id for m in desk.review_queue(db, LOW)]
            assert queue == [user_ids[1], user_ids[0]]  # low confidence, and the message answered with a thumbs-down
            desk.relabel(db, user_ids[0], "return_item", alice, ["return_item", "refund_status"])
            correction = desk.relabel(db, user_ids[0], "refund_status", alice, ["return_item", "refund_status"])
            assert (correction.intent, correction.predicted_intent) == ("refund_status", "return_item")
            with pytest.raises(desk.DeskError, match="not one the model knows"):
                desk.relabel(db, user_ids[0], "made_up", alice, ["return_item"])
            with pytest.raises(desk.DeskError, match="bot message"):
                desk.relabel(db, bot_id, "return_item", alice, ["return_item"])
            assert [m.id for m in desk.review_queue(db, LOW)] == [user_ids[1]]
        with sessions() as db:
            assert db.scalars(select(Correction.intent)).all() == ["refund_status"]

    def test_agent_accounts_and_tokens(self, sessions):
        with sessions.begin() as db:
            agents.create_agent(db, "alice", "a long password")
            with pytest.raises(agents.AgentError, match="taken"):
                agents.create_agent(db, "alice", "another long one")
            with pytest.raises(agents.AgentError, match="at least 8"):
                agents.create_agent(db, "bob", "short")
            with pytest.raises(agents.AgentError, match="username"):
                agents.create_agent(db, "no spaces allowed", "a long password")
            stored = db.scalar(select(Agent.password_hash))
            assert stored.startswith("$argon2") and "a long password" not in stored
            assert agents.login(db, "alice", "wrong password", timedelta(hours=1)) is None
            assert agents.login(db, "nobody", "a long password", timedelta(hours=1)) is None
            agent, token = agents.login(db, "alice", "a long password", timedelta(hours=1))
            _, expired = agents.login(db, "alice", "a long password", timedelta(seconds=-1))
        with sessions.begin() as db:
            assert agents.agent_for_token(db, token).username == "alice"
            assert agents.agent_for_token(db, expired) is None and agents.agent_for_token(db, "forged") is None
            agents.logout(db, token)
        with sessions() as db:
            assert agents.agent_for_token(db, token) is None
