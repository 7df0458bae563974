"""The client address the rate limit and every per-client cap count: the connecting address, unless the
request comes from a configured proxy (DISTILBOT_TRUSTED_PROXIES), whose X-Forwarded-For names the client.
Real servers (`python -m bot serve`, so uvicorn's own proxy-header handling) and the real nginx configuration
(deploy/nginx/proxy.conf) in front of one. (The settings and the address keys alone:
tests/unit/test_client_address.py.)"""

from __future__ import annotations

import random

import httpx
import pytest

from tests.helpers.proxy import nginx_in_front
from tests.helpers.servers import free_port, served

LIMIT = "5/minute"
TIMEOUT = 30


def somebody() -> str:
    """An address a client might claim to be."""
    pick = random.SystemRandom()
    return f"{pick.randrange(1, 224)}.{pick.randrange(256)}.{pick.randrange(256)}.{pick.randrange(1, 255)}"


def ask(url: str, forwarded_for: str) -> httpx.Response:
    return httpx.post(f"{url}/api/chat", json={"message": "how much does shipping cost?"},
                      headers={"X-Forwarded-For": forwarded_for}, timeout=TIMEOUT)


def statuses(url: str, count: int, forwarded_for=somebody) -> list[int]:
    return [ask(url, forwarded_for()).status_code for _ in range(count)]


@pytest.fixture(scope="module")
def trusting_nobody(demo_registry, tmp_path_factory):
    """The default: no trusted proxies."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('nobody') / 'bot.db'}"
    with served(demo_registry, db_url, {"DISTILBOT_RATE_LIMIT": LIMIT, "DISTILBOT_TRUSTED_PROXIES": ""}) as (url, _):
        yield url


@pytest.fixture(scope="module")
def behind_nginx(demo_registry, tmp_path_factory):
    """A server trusting the loopback range (a CIDR range: here that is where nginx connects from), with nginx
    and deploy/nginx/proxy.conf in front; yields (the server's own URL, nginx's URL)."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('proxied') / 'bot.db'}"
    env = {"DISTILBOT_RATE_LIMIT": LIMIT, "DISTILBOT_TRUSTED_PROXIES": "127.0.0.0/8"}
    with served(demo_registry, db_url, env) as (url, _), \
            nginx_in_front([url.removeprefix("http://")], free_port()) as proxy:
        yield url, proxy


def test_by_default_a_client_written_x_forwarded_for_is_ignored(trusting_nobody):
    """A new made-up address on every request changes nothing: the sixth in a minute is refused."""
    assert statuses(trusting_nobody, 6) == [200] * 5 + [429]


def test_through_the_nginx_config_a_random_x_forwarded_for_still_gets_429(behind_nginx):
    """nginx sets X-Forwarded-For to the address it saw; what the client wrote in it never reaches the API."""
    _, proxy = behind_nginx
    assert statuses(proxy, 6) == [200] * 5 + [429]
    refused = ask(proxy, somebody())
    assert refused.status_code == 429 and refused.headers["retry-after"].isdigit()


def test_a_trusted_proxy_range_names_the_client(behind_nginx):
    """From an address in the trusted range, X-Forwarded-For is the client: each named client has its own
    budget (so uvicorn takes the CIDR range), and one client's sixth request is refused."""
    url, _ = behind_nginx
    assert statuses(url, 7) == [200] * 7
    client = somebody()
    assert statuses(url, 6, lambda: client) == [200] * 5 + [429]


def test_through_nginx_a_page_s_policy_names_its_own_origin_with_the_port(behind_nginx):
    """nginx passes the Host header on whole, so the shop page's CSP allows its own WebSockets on a non-default
    port (bot/api/security_headers.py)."""
    _, proxy = behind_nginx
    host = proxy.removeprefix("http://")
    policy = httpx.get(f"{proxy}/", timeout=TIMEOUT).headers["content-security-policy"]
    assert f"connect-src 'self' ws://{host} wss://{host}" in policy
