"""Security headers in a real browser: the shop (with the widget) and the console load in a real Chromium
against a real server, work under their Content-Security-Policy with no violation, and the policy is enforced.
(The headers themselves, through the app in process: tests/unit/test_security_headers.py.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.helpers.constants import AGENT_PASSWORD

TIMEOUT_MS = 15_000
W = "distilbot-widget"

VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
                          (e) => window.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
"""
INJECT = """() => {
  const script = document.createElement("script");
  script.textContent = "window.__injected = true";
  document.body.append(script);
  return window.__injected === true;
}"""


@pytest.fixture
def page(browser):
    """A fresh profile whose pages record every CSP violation; no page may throw."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(VIOLATIONS)
    errors = []
    context.on("weberror", lambda web_error: errors.append(web_error.error))
    yield context.new_page()
    context.close()
    assert not errors, errors


def violations(page: Page) -> list[str]:
    return page.evaluate("window.__violations")


def assert_enforced(page: Page) -> None:
    """Injected inline script does not run, and nothing may be fetched from or opened to another host."""
    assert page.evaluate(INJECT) is False
    page.evaluate("() => fetch('http://elsewhere.invalid/steal').catch(() => null)")
    page.evaluate("() => { try { new WebSocket('ws://elsewhere.invalid/live') } catch (e) {} }")
    page.wait_for_function("() => window.__violations.length >= 3")
    found = violations(page)
    assert any(v.startswith("script-src-elem inline") for v in found), found
    assert any(v.startswith("connect-src http://elsewhere.invalid") for v in found), found
    assert any(v.startswith("connect-src ws://elsewhere.invalid") for v in found), found


def test_the_widget_chats_and_goes_live_under_the_shop_policy_which_is_enforced(page, web_server):
    url = web_server[0]
    page.goto(f"{url}/")
    page.get_by_role("button", name="Open chat").click()
    box = page.locator(f"{W} form input")
    box.fill("how much does shipping cost?")
    box.press("Enter")
    expect(page.locator(f"{W} .log .msg.bot .bubble").last).to_contain_text("€4.95")
    page.wait_for_function("() => window.DistilbotWidget._socket && window.DistilbotWidget._socket.readyState === 1")
    # the widget's styles applied (its <style> is inline in the shadow root)
    assert page.locator(f"{W} .launcher").evaluate("b => getComputedStyle(b).position") == "fixed"
    assert violations(page) == []
    assert_enforced(page)


def test_the_console_logs_in_and_goes_live_under_its_policy_which_is_enforced(page, web_server):
    url = web_server[0]
    page.goto(f"{url}/console/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password", exact=True).fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#inbox-summary")).not_to_be_empty()
    assert violations(page) == []
    assert_enforced(page)
