"""The intents page in a real browser against a real server with the real student: the served model's figures
per intent, and an example an agent proposes that only an admin's approval makes a label."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers.clients import Visitor, login
from tests.helpers.console import open_console
from tests.helpers.constants import CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
expect.set_options(timeout=10_000)


def test_an_agent_proposes_an_example_and_an_admin_approves_it(browser, admin_server):
    url = admin_server
    Visitor(url).say("I need a VAT invoice for my company")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        bob = open_console(context, url, "bob")
        bob.get_by_role("tab", name="Intents").click()
        row = bob.locator('tr[data-intent="invoice"]')
        expect(row).to_be_visible()
        assert row.locator("td").nth(0).inner_text().endswith("%")  # golden-set precision of the served model
        assert int(row.locator("td").nth(4).inner_text()) >= 1  # visitors' messages of the last 14 days
        row.get_by_role("button", name="invoice").click()
        bob.get_by_label("New examples").fill("my accountant needs the receipt")
        bob.get_by_role("button", name="Propose examples").click()
        expect(bob.locator("#intent-examples")).to_contain_text("Waiting for an admin")
        expect(bob.get_by_role("button", name="Approve “my accountant needs the receipt”")).to_have_count(0)
        bob.close()

        ada = open_console(context, url, "ada")
        ada.get_by_role("tab", name="Intents").click()
        ada.locator('tr[data-intent="invoice"]').get_by_role("button", name="invoice").click()
        ada.get_by_role("button", name="Approve “my accountant needs the receipt”").click()
        expect(ada.locator("#intent-examples")).to_contain_text("Approved")
        ada.screenshot(path=str(SCREENSHOTS / "console-intents.png"))
        examples = [i for r in login(url, "ada").get("/intents/overview").json() if r["name"] == "invoice"
                    for i in r["examples"]]
        assert [(e["text"], e["status"], e["agent"], e["decider"]) for e in examples] == [
            ("my accountant needs the receipt", "approved", "Bob", "Ada")]
    finally:
        context.close()
