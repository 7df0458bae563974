"""Answers written by agents: placeholders are only ever `{name}` (refused otherwise at the API and, with file
and line, in data/); an intent an agent adds, and an agent's change to a served answer, is a proposal that only
an admin can approve, in the API and in the console; the served answers go out and come in as a templates
file. Against a real server with the real student. (The placeholder rules alone: tests/unit/test_templates.py;
upgrading an older store: tests/helpers/cases/store.py; the answers' revisions: tests/helpers/cases/answers.py.)"""

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


def test_answers_are_closed_to_strangers_and_only_an_admin_serves_a_change(desk):
    url, _ = desk
    shipping = httpx.get(f"{url}/api/agent/answers/shipping_cost_rates", timeout=TIMEOUT)
    assert shipping.status_code == 401
    stranger = httpx.post(f"{url}/api/agent/answers", json={"answer": {}, "base": 0}, timeout=TIMEOUT)
    assert stranger.status_code == 401
    with agent(url, "bob") as bob, agent(url, "alice") as alice:
        current = bob.get("/answers/shipping_cost_rates").json()["answer"]
        change = {**current["template"], "text": "Shipping is always free!"}
        proposed = bob.put("/answers/shipping_cost_rates", json={"answer": change, "base": current["revision"]})
        assert proposed.status_code == 200 and proposed.json()["revisions"][0]["status"] == "proposed"
        revision = proposed.json()["revisions"][0]["id"]
        assert bob.post(f"/answers/revisions/{revision}/approve").status_code == 403
        with httpx.Client(base_url=url, timeout=TIMEOUT) as visitor:
            reply = visitor.post("/api/chat", json={"message": "how much is shipping"}).json()
        assert reply["template"] == "shipping_cost_rates" and "always free" not in reply["replies"][0]["text"]
        rejected = alice.post(f"/answers/revisions/{revision}/reject")
        assert rejected.status_code == 200 and rejected.json()["revisions"][0]["status"] == "rejected"
        assert alice.post(f"/answers/revisions/{revision}/approve").status_code == 409  # decided once


@pytest.mark.parametrize("text", HOSTILE)
def test_an_answers_text_is_refused_with_anything_but_plain_placeholders(desk, text):
    url, _ = desk
    with agent(url, "alice") as alice:
        current = alice.get("/answers/shipping_cost_rates").json()["answer"]
        response = alice.put("/answers/shipping_cost_rates",
                             json={"answer": {**current["template"], "text": text}, "base": current["revision"]})
        assert response.status_code == 422, response.text
        assert alice.get("/answers/shipping_cost_rates").json()["answer"] == current


def test_an_answer_change_over_a_stale_revision_or_for_an_unknown_intent_is_refused(desk):
    url, _ = desk
    with agent(url, "alice") as alice:
        current = alice.get("/answers/return_item_window").json()["answer"]
        template = current["template"]
        stale = alice.put("/answers/return_item_window", json={"answer": template, "base": current["revision"] + 999})
        assert stale.status_code == 409 and "reload it" in stale.json()["detail"]
        unknown = alice.put("/answers/return_item_window",
                            json={"answer": {**template, "intent": "refund_everything"}, "base": current["revision"]})
        assert unknown.status_code == 422 and "does not know" in unknown.json()["detail"]
        renamed = alice.put("/answers/return_item_window",
                            json={"answer": {**template, "id": "other_id"}, "base": current["revision"]})
        assert renamed.status_code == 422
        assert alice.get("/answers/return_item_window").json()["answer"] == current


def bot_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, capture_output=True, text=True)


def test_the_served_answers_are_exported_and_an_edited_file_imported(desk, demo_registry, tmp_path):
    url, db_url = desk
    exported = tmp_path / "templates.yml"
    done = bot_cli("templates", "export", "--out", str(exported), "--registry", str(demo_registry), "--db", db_url)
    assert done.returncode == 0, done.stderr
    text = exported.read_text()
    assert "id: size_guide_chart" in text
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("intent: size_guide\n", "intent: shoe_sizes\n"))
    refused = bot_cli("templates", "import", str(broken), "--registry", str(demo_registry), "--db", db_url)
    assert refused.returncode == 2 and f"{broken}:" in refused.stderr and "shoe_sizes" in refused.stderr, refused.stderr
    exported.write_text(text.replace("id: size_guide_chart", "id: size_guide_table", 1))
    imported = bot_cli("templates", "import", str(exported), "--registry", str(demo_registry), "--db", db_url)
    assert imported.returncode == 0, imported.stderr
    assert "1 answers changed or added, 0 retired" in imported.stdout
    with agent(url, "alice") as alice:
        added = alice.get("/answers/size_guide_table").json()
        assert added["answer"]["state"] == "served" and added["revisions"][0]["author"] is None


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/canned", None), ("POST", "/canned", {"shortcut": "hi", "text": "Hello"}),
    ("PUT", "/canned/1", {"shortcut": "hi", "text": "Hello"}), ("DELETE", "/canned/1", None),
    ("GET", "/intents/overview", None), ("POST", "/intents/invoice/examples", {"texts": ["bill please"]}),
    ("POST", "/examples/1/approve", None), ("POST", "/redistillations", None), ("GET", "/models", None)])
def test_a_stranger_gets_nothing_from_canned_replies_intents_examples_or_models(desk, method, path, body):
    url, _ = desk
    response = httpx.request(method, f"{url}/api/agent{path}", json=body, timeout=TIMEOUT)
    assert response.status_code == 401, response.text


def test_an_agent_cannot_approve_an_example_nor_touch_another_agents_canned_reply(desk):
    url, _ = desk
    with agent(url, "bob") as bob, agent(url, "alice") as alice:
        [example] = bob.post("/intents/invoice/examples", json={"texts": ["the bill for my firm"]}).json()
        assert example["status"] == "proposed"
        assert bob.post(f"/examples/{example['id']}/approve").status_code == 403
        own = alice.post("/canned", json={"shortcut": "mine", "text": "Alice's own"}).json()
        assert bob.put(f"/canned/{own['id']}", json={"shortcut": "mine", "text": "Bob's now"}).status_code == 404
        assert bob.delete(f"/canned/{own['id']}").status_code == 404
        assert [c["shortcut"] for c in bob.get("/canned").json()] == []
        assert bob.post("/canned", json={"shortcut": "team", "text": "For all", "shared": True}).status_code == 403
        assert alice.post(f"/examples/{example['id']}/approve").json()["status"] == "approved"
