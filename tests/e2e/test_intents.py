"""The intents page on PostgreSQL (the cases of tests/helpers/cases/intents.py)."""

from __future__ import annotations

from tests.helpers.cases import OnPostgreSQL
from tests.helpers.cases.intents import IntentCases


class TestIntentsOnPostgreSQL(OnPostgreSQL, IntentCases):
    """The intent cases on a fresh PostgreSQL database each."""
