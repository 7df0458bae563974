"""The agents' operations on a SQLite store (the cases of tests/helpers/cases/desk.py; tests/e2e/test_desk.py
runs them on PostgreSQL)."""

from __future__ import annotations

from tests.helpers.cases.desk import DeskStoreCases


class TestDeskOnSQLite(DeskStoreCases):
    """The desk cases on a SQLite file each."""
