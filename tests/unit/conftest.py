"""The unit tier: no real model weights, no server process, no browser, no PostgreSQL or Redis; SQLite files
and the tiny random models of tests/conftest.py. `make test-fast` runs it alone."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_url(tmp_path) -> str:
    """An empty SQLite store (tests/e2e runs the same cases on PostgreSQL: tests/helpers/cases)."""
    return f"sqlite:///{tmp_path / 'bot.db'}"
