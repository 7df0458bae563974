"""Round-robin assignment on PostgreSQL (the cases of tests/helpers/cases/assignment.py), and through a real server
with DISTILBOT_ASSIGNMENT=round_robin: waiting conversations are offered in turn to the agents whose console
is open, and an offer does not keep another agent from taking the conversation."""

from __future__ import annotations

import pytest

from tests.helpers.cases import OnPostgreSQL
from tests.helpers.cases.assignment import AssignmentCases
from tests.helpers.clients import Live, Visitor, login
from tests.helpers.servers import add_agents, served

HUMAN_PLEASE = "I want to talk to a real person please"


class TestAssignmentOnPostgreSQL(OnPostgreSQL, AssignmentCases):
    """The assignment cases on a fresh PostgreSQL database each."""


@pytest.fixture(scope="module")
def server(demo_registry, tmp_path_factory):
    db_url = f"sqlite:///{tmp_path_factory.mktemp('assignment') / 'bot.db'}"
    add_agents(db_url, "carol", "dan", "erin")
    with served(demo_registry, db_url, {"DISTILBOT_ASSIGNMENT": "round_robin"}) as (url, _process):
        yield url


def test_waiting_conversations_are_offered_in_turn_to_agents_with_an_open_console(server):
    carol, dan, erin = (login(server, name) for name in ("carol", "dan", "erin"))
    consoles = [Live(f"{server}/api/agent/live", client.token) for client in (carol, dan)]  # erin is offline
    try:
        offered = []
        for _ in range(4):
            visitor = Visitor(server)
            assert visitor.say(HUMAN_PLEASE)["status"] == "waiting_for_agent"
            offered.append(carol.get(f"/conversations/{visitor.session}").json()["agent"])
        assert offered in (["Carol", "Dan", "Carol", "Dan"], ["Dan", "Carol", "Dan", "Carol"]), offered
        mine = carol.get("/conversations", params={"mine": "true", "status": "waiting_for_agent"}).json()
        assert mine["total"] == 2
        watched = Visitor(server)
        watched.say("hello")
        widget = Live(f"{server}/api/conversations/{watched.session}/live", watched.token)
        try:
            watched.say(HUMAN_PLEASE)
            status = widget.next("status")
            assert status["status"] == "waiting_for_agent" and status["agent"] is None and status["agent_id"] is None
        finally:
            widget.close()
        assert carol.get(f"/conversations/{watched.session}").json()["agent"] in ("Carol", "Dan")
        assert visitor.history()["agent"] is None  # the visitor is never told who was offered it
        taken = erin.post(f"/conversations/{visitor.session}/take")  # an offer is not a lock
        assert taken.status_code == 200 and taken.json()["agent"] == "Erin"
        assert visitor.history()["agent"] == "Erin"
    finally:
        for console in consoles:
            console.close()
