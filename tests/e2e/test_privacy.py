"""Customer data handed over and erased: on PostgreSQL (the cases of tests/helpers/cases/privacy.py), and through
a real server with the real student, where only an admin may export or erase."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest

from tests.helpers.cases import OnPostgreSQL
from tests.helpers.cases.privacy import PrivacyCases
from tests.helpers.clients import Visitor, login
from tests.helpers.servers import add_admins, add_agents, served


class TestPrivacyOnPostgreSQL(OnPostgreSQL, PrivacyCases):
    """The privacy cases on a fresh PostgreSQL database each."""


@pytest.fixture(scope="module")
def server(demo_registry, tmp_path_factory):
    db_url = f"sqlite:///{tmp_path_factory.mktemp('privacy') / 'bot.db'}"
    add_admins(db_url, "ada")
    add_agents(db_url, "bob")
    with served(demo_registry, db_url) as (url, _process):
        yield url


def test_only_an_admin_exports_or_erases(server):
    erasure = {"conversation_id": "0" * 32}
    assert httpx.get(f"{server}/api/agent/exports/conversations").status_code == 401
    assert httpx.post(f"{server}/api/agent/erasures", json=erasure).status_code == 401
    bob = login(server, "bob")
    assert bob.get("/exports/conversations").status_code == 403
    assert bob.post("/erasures", json=erasure).status_code == 403


def test_an_admin_exports_a_visitors_conversation_then_erases_it(server):
    visitor = Visitor(server)
    visitor.say("how much does shipping cost to Elm Street 12?")
    visitor.say("thanks")
    ada = login(server, "ada")
    exported = ada.get("/exports/conversations", params={"q": "Elm Street 12"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in exported.headers["content-disposition"]
    records = [json.loads(line) for line in exported.text.splitlines()]
    assert [r["id"] for r in records] == [visitor.session]
    assert [m["text"] for m in records[0]["transcript"] if m["role"] == "user"] == [
        "how much does shipping cost to Elm Street 12?", "thanks"]
    as_csv = ada.get("/exports/conversations", params={"q": "Elm Street 12", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {r["conversation_id"] for r in rows} == {visitor.session} and len(rows) == 4

    erased = ada.post("/erasures", json={"conversation_id": visitor.session})
    assert erased.status_code == 201, erased.text
    assert erased.json()["conversations"] == 1 and erased.json()["visitor_texts"] == 2
    gone = httpx.get(f"{server}/api/conversations/{visitor.session}",
                     headers={"Authorization": f"Bearer {visitor.token}"})
    assert gone.status_code == 404
    assert ada.get("/exports/conversations", params={"q": "Elm Street 12"}).text == ""
    assert ada.post("/erasures", json={"conversation_id": visitor.session}).status_code == 404
    assert ada.post("/erasures", json={}).status_code == 422
