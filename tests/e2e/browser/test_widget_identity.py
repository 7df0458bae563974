"""Identity verification through the real widget in a real Chromium: a shop page that passes its logged-in
customer (data-user-id, data-user-email, data-user-hash) lets that customer ask about their own order without
an e-mail address; a forged hash is refused; another login on the same browser starts its own conversation."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from bot.conversation.ownership import identity_hash
from tests.helpers.servers import served

SECRET = "the-shop-and-the-bot"
W = "distilbot-widget"
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def url(demo_registry, tmp_path_factory):
    db_url = f"sqlite:///{tmp_path_factory.mktemp('identity') / 'bot.db'}"
    with served(demo_registry, db_url, {"DISTILBOT_IDENTITY_SECRET": SECRET}) as (url, _process):
        yield url


def account_page(browser, url: str, user_id: str, user_hash: str, context=None) -> Page:
    """The shop's account page as its server would render it for a logged-in customer."""
    context = context or browser.new_context()
    page = context.new_page()
    html = (f'<!doctype html><title>My account</title><h1>My account</h1>'
            f'<script src="/widget.js" data-user-id="{user_id}" data-user-email="ana.costa@example.com" '
            f'data-user-hash="{user_hash}"></script>')
    page.route(f"{url}/account", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.goto(f"{url}/account")
    page.get_by_role("button", name="Open chat").click()
    return page


def say(page: Page, text: str) -> None:
    page.locator(f"{W} form input").fill(text)
    page.locator(f"{W} form input").press("Enter")


def stored_session(page: Page, url: str) -> dict:
    return json.loads(page.evaluate("key => localStorage.getItem(key)", f"distilbot:session:{url}"))


def test_a_verified_customer_gets_their_order_without_an_email(browser, url):
    page = account_page(browser, url, "cust-1001", identity_hash(SECRET, "cust-1001"))
    say(page, "where is my order NW482913")
    expect(page.locator(f"{W} .log .msg.bot .bubble").last).to_contain_text("NW482913 is on its way with DHL")
    ana = stored_session(page, url)
    assert ana["user"] == "cust-1001"
    context = page.context
    page.close()  # Ana logs out; the next customer logs in on the same browser
    other = account_page(browser, url, "cust-1002", identity_hash(SECRET, "cust-1002"), context)
    say(other, "where is my order NW482913")  # Ana's order, asked by the next customer on this browser
    expect(other.locator(f"{W} .log .msg.bot .bubble").filter(has_text="couldn't find an order")).to_be_visible()
    expect(other.locator(f"{W} .log .msg.bot .bubble").filter(has_text="DHL")).to_have_count(0)
    assert stored_session(other, url)["id"] != ana["id"]
    context.close()


def test_a_forged_hash_is_refused(browser, url):
    page = account_page(browser, url, "cust-1002", identity_hash("guessed", "cust-1002"))
    say(page, "where is my order NW730219")
    expect(page.locator(f"{W} .note.error")).to_be_visible()
    expect(page.locator(f"{W} .log .msg.bot .bubble").filter(has_text="NW730219")).to_have_count(0)
    page.context.close()
