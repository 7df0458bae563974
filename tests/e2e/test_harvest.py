"""The harvest on PostgreSQL (the cases of tests/helpers/cases/harvest.py; tests/unit/test_harvest.py runs them on
SQLite)."""

from __future__ import annotations

from tests.helpers.cases import OnPostgreSQL
from tests.helpers.cases.harvest import HarvestCases


class TestHarvestOnPostgreSQL(OnPostgreSQL, HarvestCases):
    """The harvest cases on a fresh PostgreSQL database each."""
