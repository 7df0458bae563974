"""Rate limits and CORS on real servers (their own uvicorn processes, the real distilled demo bot).

The servers trust X-Forwarded-For from 127.0.0.1 (DISTILBOT_TRUSTED_PROXIES, as behind a reverse proxy), so each
test plays its own client addresses and the per-client counters of one test never touch another's."""

from __future__ import annotations

import random

import httpx
import pytest

from tests.helpers.servers import served

SHOP = "https://shop.example"
EVIL = "https://evil.example"
LIMITS = {"DISTILBOT_RATE_LIMIT": "5/minute", "DISTILBOT_CORS_ORIGINS": f'["{SHOP}"]',
          "DISTILBOT_TRUSTED_PROXIES": "127.0.0.1"}
REDIS_URL = "redis://127.0.0.1:6379/0"
TIMEOUT = 30


@pytest.fixture(scope="module")
def limited(demo_registry, tmp_path_factory):
    """One server with both settings: 5 requests a minute per client (in memory) and CORS for the shop."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'bot.db'}"
    with served(demo_registry, db_url, LIMITS) as (url, process):
        yield url
        assert process.poll() is None


def new_client() -> str:
    """A client address nobody has used (the Redis-backed counters outlive a test run by a minute)."""
    pick = random.SystemRandom()  # not the seeded global generator: an address no earlier run used
    return f"10.{pick.randrange(256)}.{pick.randrange(256)}.{pick.randrange(1, 255)}"


def chat(url: str, client: str, origin: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": client} | ({"Origin": origin} if origin else {})
    return httpx.post(f"{url}/api/chat", json={"message": "how much does shipping cost?"}, headers=headers,
                      timeout=TIMEOUT)


def assert_limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    retry = response.headers["retry-after"]
    assert retry.isdigit() and 1 <= int(retry) <= 60, retry
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert "too many requests" in detail and "the limit is 5 per 1 minute" in detail, detail
    return int(retry)


def preflight(url: str, origin: str, client: str | None = None) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization,content-type"}
    return httpx.options(f"{url}/api/chat", headers=headers | ({"X-Forwarded-For": client} if client else {}),
                         timeout=TIMEOUT)


def test_the_sixth_chat_in_a_minute_gets_429_with_retry_after(limited):
    client = new_client()
    for n in range(5):
        assert chat(limited, client).status_code == 200, n
    assert_limited(chat(limited, client))
    assert_limited(chat(limited, client))  # and stays limited
    limited_history = httpx.get(f"{limited}/api/conversations/{'0' * 32}", headers={"X-Forwarded-For": client})
    assert_limited(limited_history)  # every /api route counts, not only chat
    rasa = httpx.post(f"{limited}/webhooks/rest/webhook", json={"sender": "s", "message": "hi"},
                      headers={"X-Forwarded-For": client}, timeout=TIMEOUT)
    assert_limited(rasa)


def test_other_clients_are_not_held_back_by_one_that_is_limited(limited):
    noisy, quiet = new_client(), new_client()
    for _ in range(6):
        chat(limited, noisy)
    assert_limited(chat(limited, noisy))
    assert chat(limited, quiet).status_code == 200


def test_health_metrics_and_ready_are_not_rate_limited(limited):
    client = new_client()
    for _ in range(6):
        chat(limited, client)
    assert_limited(chat(limited, client))
    for _ in range(10):
        for path in ("/health", "/metrics", "/ready"):
            response = httpx.get(f"{limited}{path}", headers={"X-Forwarded-For": client}, timeout=TIMEOUT)
            assert response.status_code == 200, (path, response.text)


def test_a_preflight_from_the_allowed_origin_is_allowed(limited):
    response = preflight(limited, SHOP)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers


def test_a_preflight_from_another_origin_is_not_allowed(limited):
    response = preflight(limited, EVIL)
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_actual_requests_carry_the_cors_header_only_for_the_allowed_origin(limited):
    allowed = chat(limited, new_client(), SHOP)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == SHOP
    other = chat(limited, new_client(), EVIL)
    assert "access-control-allow-origin" not in other.headers
    plain = chat(limited, new_client())
    assert "access-control-allow-origin" not in plain.headers


def test_a_429_to_the_allowed_origin_is_readable_by_the_browser(limited):
    client = new_client()
    for _ in range(5):
        assert chat(limited, client, SHOP).status_code == 200
    refused = chat(limited, client, SHOP)
    assert_limited(refused)
    assert refused.headers["access-control-allow-origin"] == SHOP
    # preflights are answered before the limit applies, and did not count: the browser still gets to ask
    for _ in range(3):
        assert preflight(limited, SHOP, client).headers["access-control-allow-origin"] == SHOP


def test_replicas_sharing_redis_share_the_limit(demo_registry, tmp_path_factory):
    """Two servers on one store and one Redis: a client's requests count together wherever they land."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('replicas') / 'bot.db'}"
    env = LIMITS | {"DISTILBOT_REDIS_URL": REDIS_URL}
    with served(demo_registry, db_url, env) as (first, _p1), served(demo_registry, db_url, env) as (second, _p2):
        client = new_client()
        for n, url in enumerate([first, second, first, second, first]):
            assert chat(url, client).status_code == 200, n
        assert_limited(chat(second, client))
        assert_limited(chat(first, client))
        assert chat(second, new_client()).status_code == 200
