"""The store on SQLite (the cases of tests/helpers/cases/store.py; tests/e2e/test_store.py runs them on
PostgreSQL)."""

from __future__ import annotations

from tests.helpers.cases.store import StoreCases


class TestStoreOnSQLite(StoreCases):
    """The store cases on a SQLite file each."""
