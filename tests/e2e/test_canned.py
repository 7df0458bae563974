"""Canned replies on PostgreSQL (the cases of tests/helpers/cases/canned.py; tests/unit/test_canned.py runs them on
SQLite; the console's `/` shortcuts: tests/e2e/browser/test_answers.py)."""

from __future__ import annotations

from tests.helpers.cases import OnPostgreSQL
from tests.helpers.cases.canned import CannedCases


class TestCannedOnPostgreSQL(OnPostgreSQL, CannedCases):
    """The canned-reply cases on a fresh PostgreSQL database each."""
