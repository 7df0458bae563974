"""Test cases both tiers run: on SQLite and the in-process event bus in tests/unit, on PostgreSQL and Redis in
tests/e2e. Each module holds a class of cases (not collected here: its name does not start with Test); a tier's
test module subclasses it as `Test...`, and the tier's `db_url` fixture (or the subclass's `new_bus`) picks the
backend. `OnPostgreSQL` is the e2e side's: a fresh PostgreSQL database per test."""

from __future__ import annotations

import pytest

from tests.helpers.databases import fresh_pg_database


class OnPostgreSQL:
    """Mixin: `db_url` is a new, empty PostgreSQL database on the shared server (dropped afterwards)."""

    @pytest.fixture
    def db_url(self):
        with fresh_pg_database("distilbot_test") as url:
            yield url
