"""Security headers (bot/api/security_headers.py): a Content-Security-Policy on every page the app serves, and
`nosniff`, `Referrer-Policy` and no framing on every response, through the app in process. (The pages under
their policy in a real browser: tests/e2e/browser/test_security_headers.py.)"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from bot.api.app import create_app
from bot.infra.settings import Settings


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
