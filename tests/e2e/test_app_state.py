"""Per-app state through the real app on the real demo bot: two apps in one process keep their own stores
(an order one app knows is unknown to the other), and the connection pool is sized from the thread settings."""

from __future__ import annotations

from fastapi.testclient import TestClient

from bot.api.app import create_app
from bot.api.deps import LOGIN_WORKERS
from bot.infra.settings import Settings
from tests.helpers.constants import DATA

KNOWN = "NW482913"  # in data/orders.json, with this e-mail address
EMAIL = "ana.costa@example.com"


def _app(registry, db_url: str, seeded: bool, threads: int = 4) -> TestClient:
    return TestClient(create_app(Settings(registry=registry, db_url=db_url, rate_limit="off", threads=threads,
                                          seed_orders=DATA / "orders.json" if seeded else None)))


def _track(client: TestClient) -> str:
    first = client.post("/api/chat", json={"message": f"where is my order {KNOWN}"}).json()
    headers = {"Authorization": f"Bearer {first['session_token']}"}
    answer = client.post("/api/chat", json={"message": EMAIL, "session_id": first["session_id"]}, headers=headers)
    assert answer.status_code == 200, answer.text
    return " ".join(reply["text"] for reply in answer.json()["replies"])


def test_two_apps_in_one_process_keep_their_own_stores(demo_registry, tmp_path):
    with _app(demo_registry, f"sqlite:///{tmp_path / 'shop.db'}", seeded=True) as shop, \
            _app(demo_registry, f"sqlite:///{tmp_path / 'empty.db'}", seeded=False) as empty:
        assert "on its way" in _track(shop)
        assert "couldn't find an order" in _track(empty)
        assert "on its way" in _track(shop)  # the app started last did not take the first one's store


def test_the_pool_holds_a_connection_per_thread_that_can_use_one(demo_registry, pg_url):
    with _app(demo_registry, pg_url, seeded=False, threads=3) as client:
        pool = client.app.state.services.sessions.kw["bind"].pool
        assert pool.size() == 3 + LOGIN_WORKERS
        assert pool._max_overflow <= 2
