"""Canned replies (bot/desk/canned.py) on a real store: shared and personal, who may change which, shortcuts taken
once, and the conversation's values filled in (tests/unit/test_canned.py on SQLite, tests/e2e/test_canned.py on
PostgreSQL)."""

from __future__ import annotations

import pytest

from bot.desk import canned
from bot.desk.desk import DeskError
from bot.infra.store import Agent, Conversation, Role, make_engine, make_sessionmaker

DEFAULTS = {"support_email": "help@example.com", "order_id": "your order"}


class CannedCases:
    @pytest.fixture
    def store(self, db_url):
        engine = make_engine(db_url)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as db:
            db.add_all([Agent(id=1, username="ada", display_name="Ada", password_hash="-", role=Role.ADMIN),
                        Agent(id=2, username="bob", display_name="Bob", password_hash="-"),
                        Agent(id=3, username="cy", display_name="Cy", password_hash="-")])
            db.add(Conversation(id="c1", token_hash="x" * 64, status="with_agent",
                                slots={"order_id": "NW123456", "email": None, "requested_slot": "email"}))
        yield sessions
        engine.dispose()

    def test_shared_and_personal_replies_are_filled_from_the_conversation(self, store):
        with store.begin() as db:
            ada, bob = db.get_one(Agent, 1), db.get_one(Agent, 2)
            canned.create(db, ada, "refund", "Hi, {agent} here: the refund for {order_id} is on its way.", True)
            canned.create(db, bob, "bye", "Thanks, write to {support_email} any time. {mood}", False)
        with store() as db:
            bob, cy = db.get_one(Agent, 2), db.get_one(Agent, 3)
            filled = {c.shortcut: c.filled for c in canned.listed(db, bob, db.get_one(Conversation, "c1"), DEFAULTS)}
            assert filled == {"bye": "Thanks, write to help@example.com any time. {mood}",
                              "refund": "Hi, Bob here: the refund for NW123456 is on its way."}
            assert [c.shortcut for c in canned.listed(db, cy, None, {})] == ["refund"]  # bob's own is his

    def test_an_agents_own_reply_wins_its_shortcut_and_only_admins_keep_shared_ones(self, store):
        with store.begin() as db:
            ada, bob = db.get_one(Agent, 1), db.get_one(Agent, 2)
            shared = canned.create(db, ada, "hello", "Hello!", True).id
            canned.create(db, bob, "hello", "Hey there!", False)
            with pytest.raises(DeskError) as not_admin:
                canned.create(db, bob, "team", "We are here.", True)
            assert not_admin.value.status == 403
        for attempt in (lambda db, bob: canned.edit(db, bob, shared, "hello", "Yo"),
                        lambda db, bob: canned.delete(db, bob, shared)):
            with store.begin() as db, pytest.raises(DeskError) as refused:
                attempt(db, db.get_one(Agent, 2))
            assert refused.value.status == 403
        with store() as db:
            assert [c.text for c in canned.listed(db, db.get_one(Agent, 2), None, {})] == ["Hey there!"]
            assert [c.text for c in canned.listed(db, db.get_one(Agent, 3), None, {})] == ["Hello!"]

    def test_a_shortcut_is_taken_once_and_someone_elses_reply_is_not_found(self, store):
        with store.begin() as db:
            bob = db.get_one(Agent, 2)
            mine = canned.create(db, bob, "wait", "One moment please.", False).id
        with store.begin() as db, pytest.raises(DeskError) as taken:
            canned.create(db, db.get_one(Agent, 2), "wait", "Again", False)
        assert taken.value.status == 409
        with store.begin() as db, pytest.raises(DeskError) as hidden:
            canned.delete(db, db.get_one(Agent, 3), mine)
        assert hidden.value.status == 404
        with store.begin() as db, pytest.raises(DeskError) as hostile:
            canned.edit(db, db.get_one(Agent, 2), mine, "wait", "{support_email.__class__}")
        assert hostile.value.status == 422
        with store() as db:
            assert [c.text for c in canned.listed(db, db.get_one(Agent, 2), None, {})] == ["One moment please."]
