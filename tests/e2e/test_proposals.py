"""Answers written by agents: placeholders are only ever `{name}` (refused otherwise at the API and, with
file and line, in data/), and an intent an agent adds is a proposal that only an admin can approve, in the
API and in the console, before redistillation learns it. Against a real server with the real student. (The
placeholder rules alone: tests/unit/test_templates.py; upgrading an older store: tests/helpers/cases/store.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine

from bot.infra.store import NewIntent, make_sessionmaker
from distill.harvest import collect
from tests.helpers.constants import AGENT_PASSWORD, CHROMIUM, ROOT
from tests.helpers.constants import HOSTILE_PLACEHOLDERS as HOSTILE
from tests.helpers.servers import add_agents, served

TIMEOUT = 30
EXAMPLES = ["can you wrap it as a gift", "gift wrapping please", "do you do gift wrap", "wrap my order as a present",
            "is gift packaging available"]


def add_admin(db_url: str, username: str, name: str) -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "agent", "add", username, "--name", name, "--admin",
                           "--db", db_url], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "DISTILBOT_AGENT_PASSWORD": AGENT_PASSWORD})
    assert done.returncode == 0 and f"admin {username!r} ({name}) created" in done.stdout, done.stderr


@pytest.fixture(scope="module")
def desk(demo_registry, tmp_path_factory):
    """A server with an admin (alice) and an agent (bob)."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('proposals') / 'bot.db'}"
    add_admin(db_url, "alice", "Alice")
    add_agents(db_url, "bob")
    with served(demo_registry, db_url) as (url, _process):
        yield url, db_url


def agent(url: str, username: str) -> httpx.Client:
    response = httpx.post(f"{url}/api/agent/login", json={"username": username, "password": AGENT_PASSWORD})
    assert response.status_code == 200, response.text
    return httpx.Client(base_url=f"{url}/api/agent", timeout=TIMEOUT,
                        headers={"Authorization": f"Bearer {response.json()['token']}"})


def propose(client: httpx.Client, name: str, answer: str = "We gift-wrap for €3.50. Questions? {support_email}"):
    return client.post("/intents", json={"name": name, "answer": answer, "examples": EXAMPLES})


@pytest.mark.parametrize("answer", HOSTILE)
def test_the_api_refuses_format_specs_conversions_attributes_and_indexes(desk, answer):
    url, _ = desk
    with agent(url, "bob") as bob:
        refused = propose(bob, "gift_hostile", f"Mail {answer}")
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith("answer: ") and "only {name}" in refused.json()["detail"]


def test_an_agents_intent_is_a_proposal_until_an_admin_approves_it(desk):
    url, db_url = desk
    with agent(url, "alice") as alice, agent(url, "bob") as bob:
        assert alice.get("/me").json()["role"] == "admin" and bob.get("/me").json()["role"] == "agent"
        proposed = propose(bob, "gift_wrapping")
        assert proposed.status_code == 201, proposed.text
        assert proposed.json()["status"] == "proposed" and proposed.json()["decided_by"] is None
        assert propose(bob, "store_hours").status_code == 201

        for action in ("approve", "reject"):  # an agent cannot decide, not even on their own proposal
            refused = bob.post(f"/intents/gift_wrapping/{action}")
            assert refused.status_code == 403 and "only an admin" in refused.json()["detail"]
        assert collect(db_url, None).new_intents == []  # nothing approved: nothing learned

        approved = alice.post("/intents/gift_wrapping/approve")
        assert approved.status_code == 200, approved.text
        alice_id = alice.get("/me").json()["id"]
        assert approved.json()["status"] == "approved" and approved.json()["decided_by"] == alice_id
        assert approved.json()["decider"] == "Alice" and approved.json()["agent"] == "Bob"
        assert approved.json()["decided_at"] is not None
        assert alice.post("/intents/store_hours/reject").json()["status"] == "rejected"
        assert alice.post("/intents/no_such_intent/approve").status_code == 404

        listed = {p["name"]: p["status"] for p in bob.get("/intents/new").json()}
        assert listed == {"gift_wrapping": "approved", "store_hours": "rejected"}
        assert [p["name"] for p in bob.get("/intents/new", params={"status": "rejected"}).json()] == ["store_hours"]
        assert [i.name for i in collect(db_url, None).new_intents] == ["gift_wrapping"]  # only approved

        assert propose(bob, "gift_wrapping").status_code == 409
        again = propose(bob, "store_hours", "We are open 9 to 5; write to {support_email}")  # rejected: may retry
        assert again.status_code == 201 and again.json()["status"] == "proposed"
        own = propose(alice, "loyalty_points", "Points are shown under {account_url}")
        assert own.status_code == 201 and own.json()["status"] == "approved"  # an admin's own is approved at once
        assert sorted(i.name for i in collect(db_url, None).new_intents) == ["gift_wrapping", "loyalty_points"]


def test_approving_checks_the_answer_again(desk):
    """A proposal stored before placeholders were checked (or whose slot has gone) cannot be approved."""
    url, db_url = desk
    engine = create_engine(db_url)
    with make_sessionmaker(engine).begin() as db:
        db.add(NewIntent(name="legacy_hostile", answer="{support_email:>99999}", buttons=[], examples=EXAMPLES))
    engine.dispose()
    with agent(url, "alice") as alice:
        refused = alice.post("/intents/legacy_hostile/approve")
        assert refused.status_code == 422 and "only {name}" in refused.json()["detail"]
        assert alice.post("/intents/legacy_hostile/reject").status_code == 200


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
def test_admins_approve_and_reject_proposals_in_the_console_and_agents_only_see_them(desk, browser):
    url, _ = desk
    with agent(url, "bob") as bob:
        assert propose(bob, "gift_cards", "Gift cards are sold at {account_url}").status_code == 201
        assert propose(bob, "price_match").status_code == 201
    errors = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        for username in ("bob", "alice"):
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{url}/console/")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password", exact=True).fill(AGENT_PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("tab", name="Proposals").click()
            item = page.locator('.proposal[data-name="gift_cards"]')
            expect(item).to_contain_text("Gift cards are sold at {account_url}")
            expect(item).to_contain_text("Proposed by Bob")
            if username == "bob":
                expect(item.get_by_role("button")).to_have_count(0)  # agents see proposals, cannot decide
                page.get_by_role("button", name="Log out").click()
                continue
            expect(page.locator("#tab-proposals-count")).not_to_have_text("0")
            item.get_by_role("button", name="Approve gift_cards").click()
            expect(page.locator('.proposal[data-name="gift_cards"]')).to_have_attribute("data-status", "approved")
            expect(page.locator('.proposal[data-name="gift_cards"]')).to_contain_text("approved by Alice")
            page.locator('.proposal[data-name="price_match"]').get_by_role("button", name="Reject price_match").click()
            expect(page.locator('.proposal[data-name="price_match"]')).to_have_attribute("data-status", "rejected")
    finally:
        context.close()
    assert not errors, errors
    with agent(url, "bob") as bob:
        states = {p["name"]: p["status"] for p in bob.get("/intents/new").json()}
    assert states["gift_cards"] == "approved" and states["price_match"] == "rejected"
