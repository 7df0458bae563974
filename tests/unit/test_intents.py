"""The intents page on SQLite (the cases of tests/helpers/cases/intents.py)."""

from __future__ import annotations

from tests.helpers.cases.intents import IntentCases


class TestIntentsOnSQLite(IntentCases):
    """The intent cases on a SQLite file each."""
