"""Customer data in the console, in a real browser against a real server: an admin downloads what the inbox's
filters show and erases a visitor's conversation; an agent sees neither. A message in a language the model
does not know reaches the inbox marked with its language. (The rules: tests/helpers/cases/privacy.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers.clients import Visitor
from tests.helpers.console import open_console, row
from tests.helpers.constants import CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
expect.set_options(timeout=10_000)


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    yield context
    context.close()


def test_an_admin_exports_then_erases_a_visitor_and_an_agent_can_do_neither(context, admin_server, tmp_path):
    url = admin_server
    visitor = Visitor(url)
    visitor.say("Mein Paket ist beschädigt angekommen, bitte helfen Sie mir")
    agent = open_console(context, url, "bob")
    agent.get_by_label("Search messages").fill("beschädigt")
    expect(row(agent, visitor.session)).to_contain_text("Language: de")
    row(agent, visitor.session).click()
    expect(agent.locator("#facts")).to_contain_text("de (the bot does not know it)")
    expect(agent.locator("#export")).to_be_hidden()
    expect(agent.get_by_role("button", name="Erase the visitor's data")).to_be_hidden()
    agent.close()

    page = open_console(context, url, "ada")
    page.get_by_label("Search messages").fill("beschädigt")
    expect(row(page, visitor.session)).to_be_visible()
    with page.expect_download() as downloading:
        page.get_by_role("button", name="JSON Lines").click()
    saved = tmp_path / "export.jsonl"
    downloading.value.save_as(saved)
    assert [json.loads(line)["id"] for line in saved.read_text().splitlines()] == [visitor.session]

    row(page, visitor.session).click()
    page.screenshot(path=str(SCREENSHOTS / "console-erase.png"))
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Erase the visitor's data").click()
    expect(page.locator("#announcer")).to_contain_text("Erased 1 conversation(s)")
    expect(row(page, visitor.session)).to_have_count(0)
    assert visitor.put("/csat", {"score": 5}).status_code == 404  # the visitor's own link is gone too


SPY_ON_NOTIFICATIONS = """
Object.defineProperty(document, "hidden", { get: () => window.__hidden === true });
window.__notices = [];
const RealNotification = window.Notification;
window.Notification = class extends RealNotification {
  constructor(title, options) { super(title, options); window.__notices.push({ title, body: options?.body }); }
};
"""


def test_a_hidden_console_notifies_of_a_visitor_who_starts_waiting(browser, admin_server):
    """The tab's hidden state is set by the test (headless Chromium shows every tab); the notification is the
    browser's own, recorded on its way."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        context.grant_permissions(["notifications"], origin=admin_server)
        context.add_init_script(SPY_ON_NOTIFICATIONS)
        page = open_console(context, admin_server, "alice")
        expect(page.get_by_role("button", name="Notify me")).to_be_hidden()  # permission granted already
        page.evaluate("window.__hidden = true")
        visitor = Visitor(admin_server)
        visitor.say("I want to talk to a real person please")
        page.wait_for_function("window.__notices.length > 0")
        assert page.evaluate("window.__notices") == [
            {"title": "A visitor is waiting", "body": f"Visitor {visitor.session[:6]} asked for a person."}]
    finally:
        context.close()
