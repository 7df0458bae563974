"""The store on PostgreSQL (the cases of tests/helpers/cases/store.py; tests/unit/test_store.py runs them on
SQLite)."""

from __future__ import annotations

from tests.helpers.cases import OnPostgreSQL
from tests.helpers.cases.store import StoreCases


class TestStoreOnPostgreSQL(OnPostgreSQL, StoreCases):
    """The store cases on a fresh PostgreSQL database each."""
