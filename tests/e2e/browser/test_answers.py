"""Answers managed in the console, in a real browser against a real server with the real student: an admin
edits an answer and the widget says the new one at once; an agent's change waits for an admin's approval;
the model's own version is restored; an agent inserts a canned reply with `/`. (The rules and conflicts:
tests/helpers/cases/answers.py and canned.py; every replica picking a change up: tests/e2e/test_replicas.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import widget
from tests.helpers.clients import Visitor
from tests.helpers.console import open_console
from tests.helpers.constants import CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
expect.set_options(timeout=10_000)

QUESTION = "where can I download my invoice"
OWN_TEXT = "The VAT invoice for your order is emailed when it ships"
ADMINS_TEXT = "Invoices are under Orders at {account_url}; we no longer e-mail them."
AGENTS_TEXT = "Invoices: Orders › Invoice at {account_url}, or ask {support_email}."


@pytest.fixture
def desk(admin_server):
    return admin_server


@pytest.fixture
def console(browser, desk):
    pages: list[Page] = []

    def open_as(username: str) -> Page:
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = open_console(context, desk, username)
        page.get_by_role("tab", name="Answers").click()
        pages.append(page)
        return page

    yield open_as
    for page in pages:
        page.context.close()


def last_answer(browser, url: str, question: str) -> str:
    """What the widget on the demo shop answers to `question`, in a new conversation."""
    context = browser.new_context()
    try:
        page = widget.shop(context, url)
        widget.open_widget(page)
        widget.say(page, question)
        expect(widget.bubbles(page, "bot")).to_have_count(1, timeout=widget.TIMEOUT_MS)
        return widget.bubbles(page, "bot").last.inner_text()
    finally:
        context.close()


def open_answer(page: Page, answer_id: str) -> None:
    page.get_by_label("Filter answers").fill(answer_id)
    page.locator(f'.answer-row[data-id="{answer_id}"]').click()
    expect(page.get_by_label("Id", exact=True)).to_have_value(answer_id)


def test_an_admins_edit_reaches_the_widget_and_the_models_own_version_can_be_restored(browser, desk, console):
    assert OWN_TEXT in last_answer(browser, desk, QUESTION)
    page = console("ada")
    open_answer(page, "invoice_download")
    page.get_by_label("Answer text").fill(ADMINS_TEXT)
    page.get_by_role("button", name="Save and serve").click()
    expect(page.locator("#answer-state")).to_contain_text("Served · revision")
    revision = page.locator(".revision").first
    expect(revision).to_contain_text("Approved")
    expect(revision.locator(".diff .add").first).to_contain_text("we no longer e-mail them")
    expect(revision.locator(".diff .del").first).to_contain_text("is emailed when it ships")

    assert last_answer(browser, desk, QUESTION) == ADMINS_TEXT.replace("{account_url}", "northwind.example/account")
    page.screenshot(path=str(SCREENSHOTS / "console-answers.png"), full_page=True)

    page.get_by_role("button", name="Restore the model's own version").click()
    expect(page.locator(".revision").first).to_contain_text("restores the model's own")
    assert OWN_TEXT in last_answer(browser, desk, QUESTION)


def test_an_agents_change_is_served_only_once_an_admin_approved_it(browser, desk, console):
    bob = console("bob")
    open_answer(bob, "invoice_download")
    bob.get_by_label("Answer text").fill(AGENTS_TEXT)
    bob.get_by_role("button", name="Propose change").click()
    expect(bob.locator(".revision").first).to_contain_text("Waiting for an admin")
    expect(bob.get_by_role("button", name="Approve revision")).to_have_count(0)  # agents cannot approve
    assert OWN_TEXT in last_answer(browser, desk, QUESTION)

    ada = console("ada")
    open_answer(ada, "invoice_download")
    proposal = ada.locator(".revision").first
    expect(proposal).to_contain_text("by Bob")
    proposal.get_by_role("button", name="Approve revision").click()
    expect(ada.locator(".revision").first).to_contain_text("Approved")
    assert "Orders › Invoice at northwind.example/account" in last_answer(browser, desk, QUESTION)

    ada.get_by_role("button", name="Restore the model's own version").click()  # as the other tests expect it
    expect(ada.locator(".revision").first).to_contain_text("restores the model's own")


def test_an_agent_keeps_a_canned_reply_and_inserts_it_filled_in_with_a_slash(browser, desk, console):
    visitor = Visitor(desk)
    visitor.say("where is my order NW482913")  # the tracking form keeps the order number and asks for the e-mail
    page = console("alice")
    page.get_by_role("tab", name="Replies").click()
    page.get_by_role("button", name="New reply").click()
    page.get_by_label("Shortcut").fill("trackme")
    page.get_by_label("Text", exact=True).fill("I'm {agent}: I'll look into {order_id} for you now.")
    expect(page.locator("#canned-shared-row")).to_be_hidden()  # agents keep their own; admins the shared ones
    page.get_by_role("button", name="Save").click()
    expect(page.locator('.answer-row[data-shortcut="trackme"]')).to_contain_text("Yours")

    page.goto(f"{desk}/console/#/inbox/{visitor.session}")
    box = page.get_by_label("Reply to the visitor")
    box.press_sequentially("Hello! /trac")
    expect(page.get_by_role("listbox", name="Canned replies").get_by_role("option")).to_contain_text(
        "I'm Alice: I'll look into NW482913 for you now.")
    page.screenshot(path=str(SCREENSHOTS / "console-canned.png"))
    box.press("Enter")
    expect(box).to_have_value("Hello! I'm Alice: I'll look into NW482913 for you now.")
    box.press("Control+Enter")
    expect(page.locator("#transcript")).to_contain_text("I'll look into NW482913 for you now.")
    assert visitor.history()["messages"][-1]["text"] == "Hello! I'm Alice: I'll look into NW482913 for you now."
