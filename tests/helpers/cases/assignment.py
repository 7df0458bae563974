"""Round-robin assignment (bot/desk/assignment.py) on a real store: waiting conversations go to online agents in
turn, never to an offline or disabled one (tests/unit/test_assignment.py on SQLite, tests/e2e/test_assignment.py
on PostgreSQL and through a real server)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.desk import assignment
from bot.infra.store import Agent, make_engine, make_sessionmaker, utcnow

RECHECK_S = 30


class AssignmentCases:
    @pytest.fixture
    def sessions(self, db_url):
        engine = make_engine(db_url)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as db:
            db.add_all([Agent(id=i, username=n, display_name=n.title(), password_hash="-")
                        for i, n in enumerate(["ada", "bob", "cy", "dee"], start=1)])
        yield sessions
        engine.dispose()

    def offered(self, sessions, times: int) -> list[str | None]:
        names = []
        for _ in range(times):
            with sessions.begin() as db:
                agent = assignment.offer(db, RECHECK_S)
                names.append(agent.username if agent else None)
        return names

    def test_online_agents_take_turns_and_offline_or_disabled_ones_get_nothing(self, sessions):
        now = utcnow()
        with sessions.begin() as db:
            assignment.mark_seen(db, [1, 2, 4], now)
            assignment.mark_seen(db, [3], now - timedelta(seconds=assignment.ONLINE_FOR * RECHECK_S + 5))
            db.get_one(Agent, 4).disabled_at = now
        assert self.offered(sessions, 5) == ["ada", "bob", "ada", "bob", "ada"]

    def test_an_agent_who_comes_online_is_next(self, sessions):
        with sessions.begin() as db:
            assignment.mark_seen(db, [1, 2])
        assert self.offered(sessions, 2) == ["ada", "bob"]
        with sessions.begin() as db:
            assignment.mark_seen(db, [3])
        assert self.offered(sessions, 2) == ["cy", "ada"]

    def test_nobody_online_means_no_offer(self, sessions):
        assert self.offered(sessions, 1) == [None]
