"""The chat widget on the demo shop, driven through Playwright: finding its parts and chatting in it."""

from __future__ import annotations

import json

from playwright.sync_api import BrowserContext, Page, expect

W = "distilbot-widget"  # the widget's host element; Playwright's CSS locators pierce its open shadow root
TIMEOUT_MS = 15_000


def shop(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(f"{url}/")
    return page


def launcher(page: Page):
    return page.locator(f"{W} .launcher")


def panel(page: Page):
    return page.locator(f"{W} .panel")


def message_box(page: Page):
    return page.locator(f"{W} form input")


def bubbles(page: Page, role: str = ""):
    """Message bubbles of one role (user, bot, agent), or all of them with the greeting."""
    return page.locator(f"{W} .log .msg{'.' + role if role else ''} .bubble")


def open_widget(page: Page) -> None:
    page.get_by_role("button", name="Open chat").click()
    expect(panel(page)).to_be_visible()


def say(page: Page, text: str) -> None:
    message_box(page).fill(text)
    message_box(page).press("Enter")


def session(page: Page, url: str) -> dict:
    """The conversation id and token the widget keeps in localStorage (one key per API origin)."""
    stored = page.evaluate("key => localStorage.getItem(key)", f"distilbot:session:{url}")
    assert stored, "no session in localStorage"
    return json.loads(stored)


def wait_until_live(page: Page) -> None:
    """The live socket has authenticated (its first frame answered `ready`)."""
    page.wait_for_function("() => window.DistilbotWidget._socket && window.DistilbotWidget._socket.readyState === 1",
                           timeout=TIMEOUT_MS)
