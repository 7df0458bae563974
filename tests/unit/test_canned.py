"""Canned replies on SQLite (the cases of tests/helpers/cases/canned.py; tests/e2e/test_canned.py runs them on
PostgreSQL)."""

from __future__ import annotations

from tests.helpers.cases.canned import CannedCases


class TestCannedOnSQLite(CannedCases):
    """The canned-reply cases on a SQLite file each."""
