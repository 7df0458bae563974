"""The e2e tier's fixtures: one real distilled demo bot (minutes, built once), real servers, PostgreSQL at
127.0.0.1:5432 (DISTILBOT_TEST_PG) and Redis at 127.0.0.1:6379 (DISTILBOT_TEST_REDIS). The browser and the
web server of the browser tests are in tests/e2e/browser/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.constants import CHROMIUM, DATA, ROOT
from tests.helpers.databases import REDIS_URL, fresh_pg_database


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The real weights cache is shared (joining the teacher is slow)."""
    return Path(os.environ.get("DISTILBOT_CACHE", Path.home() / ".cache" / "distilbot"))


@pytest.fixture(scope="session")
def demo_registry(tmp_path_factory, cache_dir) -> Path:
    """The real pipeline (pinned teacher and student) on the full demo data, shortened to 3 epochs.
    DISTILBOT_TEST_REGISTRY names one built earlier by this fixture, to reuse while developing."""
    if os.environ.get("DISTILBOT_TEST_REGISTRY"):
        return Path(os.environ["DISTILBOT_TEST_REGISTRY"])
    from distill.config import load_config
    from distill.pipeline import run
    from distill.run_inputs import RunInputs

    registry = tmp_path_factory.mktemp("demo-registry")
    # 4 layers: in the 3 epochs the tests can afford they learn what the default 3 layers need the full schedule for
    config = load_config(ROOT / "configs" / "distill.yaml", ["epochs=3", "student_layers=4", "latency_messages=30"])
    run(config, RunInputs([DATA / "train.jsonl"], test=[DATA / "test.jsonl"], templates=DATA / "templates.yml"),
        registry, cache_dir)
    return registry


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty database: a SQLite file, or a fresh PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    with fresh_pg_database("distilbot_test") as url:
        yield url


@pytest.fixture(scope="module")
def pg_url() -> str:
    """A fresh PostgreSQL database for one module's API replicas."""
    with fresh_pg_database("distilbot_replicas") as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The shared Redis; fail at once (not after the servers' 120 s readiness wait) when it is not there."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"these tests need Redis at {REDIS_URL} (DISTILBOT_TEST_REDIS): {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (no browser download: the system's binary). Per module: the
    sync API keeps an event loop running in the main thread until it stops, which later tests' asyncio.run
    would trip over. (tests/e2e/browser shares one for the whole package.)"""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()
