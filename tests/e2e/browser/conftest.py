"""The browser tests: one Chromium and one real server (the real student, two agents) for the whole package,
instead of one of each per module. Package scope ends the browser before the rest of the e2e tier, whose
asyncio.run the Playwright sync API's event loop would trip over."""

from __future__ import annotations

import pytest

from tests.helpers.constants import CHROMIUM


@pytest.fixture(scope="package")
def browser():
    """Debian's Chromium driven by Playwright (no browser download: the system's binary)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def web_server(demo_registry, tmp_path_factory):
    """A real server with the real student, a temporary SQLite store and two agents (alice, bob)."""
    from tests.helpers.servers import add_agents, served

    db_url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'bot.db'}"
    add_agents(db_url, "alice", "bob")  # in-process: `bot agent add` is tested in tests/e2e/test_desk.py
    with served(demo_registry, db_url) as (url, process):
        yield url, db_url, process


@pytest.fixture(scope="package")
def admin_server(web_server):
    """The browser tests' server with an admin (ada) beside its agents (alice, bob): its URL."""
    from tests.helpers.servers import add_admins

    url, db_url, _process = web_server
    add_admins(db_url, "ada")
    return url
