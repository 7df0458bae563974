"""The agents' console, driven through Playwright: logging in and finding a conversation in the inbox."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.helpers.constants import AGENT_PASSWORD


def log_in(page: Page, url: str, username: str, password: str = AGENT_PASSWORD) -> None:
    page.goto(f"{url}/console/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def open_console(context, url: str, username: str) -> Page:
    """A logged-in console whose live feed listens (so no event of the test can be missed)."""
    page = context.new_page()
    log_in(page, url, username)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#inbox-summary")).not_to_be_empty()
    return page


def row(page: Page, conversation_id: str):
    return page.locator(f'.conv-row[data-conversation-id="{conversation_id}"]')
