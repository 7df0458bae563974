"""Security headers (bot/security_headers.py): a Content-Security-Policy on every page the app serves, and
`nosniff`, `Referrer-Policy` and no framing on every response. The header checks use the app in process; the
browser checks load the shop (with the widget) and the console in a real Chromium against a real server and
show that the pages work under their policy with no violation, and that the policy is enforced."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from bot.api import create_app
from bot.settings import Settings
from tests.conftest import AGENT_PASSWORD

TIMEOUT_MS = 15_000
W = "distilbot-widget"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The app without its start-up (the pages and their headers need no model)."""
    settings = Settings(registry=tmp_path_factory.mktemp("none"), rate_limit="off")
    return TestClient(create_app(settings), base_url="http://bot.example:8443")


def directives(response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/", "/console/", "/console/static/console.js", "/widget.js", "/docs", "/redoc",
                                  "/openapi.json", "/api/no-such-route"])
def test_every_response_carries_a_policy_nosniff_a_referrer_policy_and_refuses_framing(client, path):
    response = client.get(path)
    assert response.status_code in (200, 404), response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"
    policy = directives(response)
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["default-src"] == "'none'"


def test_the_shop_and_the_console_run_only_their_own_scripts_and_talk_only_to_this_server(client):
    own_sockets = "'self' ws://bot.example:8443 wss://bot.example:8443"
    shop = directives(client.get("/"))
    assert shop["script-src"] == "'self'" and shop["connect-src"] == own_sockets
    assert shop["style-src"] == "'self' 'unsafe-inline'"  # the widget's <style> in its shadow root
    console = directives(client.get("/console/"))
    assert console["script-src"] == "'self'" and console["style-src"] == "'self'"
    assert console["connect-src"] == own_sockets
    assert "ws:" not in console["connect-src"].split()  # not any host's socket, as before


def test_a_forged_host_header_adds_no_source_to_the_policy(client):
    for host in ("evil.example; script-src *", "a b", "x'y"):
        policy = directives(client.get("/", headers={"Host": host}))
        assert policy["connect-src"] == "'self'" and policy["script-src"] == "'self'", host


def test_api_responses_and_other_files_get_the_strictest_policy(client):
    for path in ("/openapi.json", "/widget.js", "/api/no-such-route"):
        policy = directives(client.get(path))
        assert set(policy) == {"default-src", "base-uri", "form-action", "frame-ancestors"}, path


def test_the_docs_load_swagger_ui_only_from_its_cdn_and_their_inline_script_only_by_hash(client):
    for path in ("/docs", "/docs/oauth2-redirect"):
        response = client.get(path)
        inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
        assert inline, path
        policy = directives(response)
        expected = {f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline}
        sources = set(policy["script-src"].split())
        assert sources == {"https://cdn.jsdelivr.net"} | expected, path
        assert "'unsafe-inline'" not in policy["script-src"] and policy["connect-src"] == "'self'"
        assert len(response.content) == int(response.headers["content-length"])  # the body passes on whole


# ---- in a real browser ----

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
