"""An agent's correction may overturn the base training data only once an admin approved it: the approve route
(admins only), the waiting list, and what the harvest and the training set then make of it, on the real
server with the demo model, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from distill.data import load_examples
from distill.harvest import collect
from distill.training_set import build
from tests.helpers.clients import Visitor, login
from tests.helpers.constants import DATA, ROOT
from tests.helpers.servers import UNLIMITED, add_agents, served


@pytest.fixture
def desk(demo_registry, db_url):
    """A served demo bot with an admin (alice) and an agent (bob) logged in."""
    add_agents(db_url, "alice", "bob")
    made = subprocess.run([sys.executable, "-m", "bot", "agent", "role", "alice", "admin", "--db", db_url],
                          cwd=ROOT, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    with served(demo_registry, db_url, UNLIMITED) as (url, _):
        yield url, login(url, "alice"), login(url, "bob")


def _pairs(training) -> set[tuple[str, str]]:
    return {(e.text, e.intent) for e in training.train}


def _visitor_message(url: str, agent, text: str) -> int:
    visitor = Visitor(url)
    visitor.say(text)
    transcript = agent.get(f"/conversations/{visitor.session}").json()["transcript"]
    return next(m["id"] for m in transcript if m["role"] == "user" and m["text"] == text)


def test_a_correction_that_contradicts_the_base_data_waits_for_an_admin(desk, db_url):
    url, alice, bob = desk
    base = load_examples(DATA / "train.jsonl")
    example = next(e for e in base if e.intent == "shipping_cost")  # a base example, relabelled by an agent
    message_id = _visitor_message(url, bob, example.text)
    assert bob.put(f"/messages/{message_id}/intent", json={"intent": "delivery_time"}).status_code == 200
    waiting = bob.get("/corrections", params={"waiting": True})
    assert waiting.status_code == 200 and [c["message_id"] for c in waiting.json()] == [message_id]
    assert waiting.json()[0]["approved_by"] is None and waiting.json()[0]["agent"] == "Bob"

    harvest = collect(db_url, None)
    assert [(c.intent, c.approved) for c in harvest.labelled] == [("delivery_time", False)]
    training = build(base, harvest, [], holdout_fraction=0.0)
    assert [w.intent for w in training.waiting_for_admin] == ["delivery_time"]
    assert (example.text, "shipping_cost") in _pairs(training)  # the base example stands

    refused = bob.post(f"/corrections/{message_id}/approve", json={"intent": "delivery_time"})
    assert refused.status_code == 403 and "only an admin" in refused.json()["detail"]
    assert alice.post(f"/corrections/{message_id + 1000}/approve", json={"intent": "x"}).status_code == 404
    stale = alice.post(f"/corrections/{message_id}/approve", json={"intent": "greeting"})  # not what it says now
    assert stale.status_code == 409 and "no longer labelled 'greeting'" in stale.json()["detail"]
    assert collect(db_url, None).labelled[0].approved is False
    approved = alice.post(f"/corrections/{message_id}/approve", json={"intent": "delivery_time"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["approver"] == "Alice" and approved.json()["intent"] == "delivery_time"
    assert alice.get("/corrections", params={"waiting": True}).json() == []

    training = build(base, collect(db_url, None), [], holdout_fraction=0.0)
    assert not training.waiting_for_admin and (example.text, "delivery_time") in _pairs(training)
    assert (example.text, "shipping_cost") not in _pairs(training)

    # an agent's different label takes the approval back; an admin's own label is approved at once
    bob.put(f"/messages/{message_id}/intent", json={"intent": "greeting"})
    assert [(c.intent, c.approved) for c in collect(db_url, None).labelled] == [("greeting", False)]
    alice.put(f"/messages/{message_id}/intent", json={"intent": "delivery_time"})
    assert [(c.intent, c.approved) for c in collect(db_url, None).labelled] == [("delivery_time", True)]
    assert json.loads(bob.get("/corrections", params={"waiting": True}).text) == []
