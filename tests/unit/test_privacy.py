"""A visitor's data erased and conversations exported, on SQLite (the cases of tests/helpers/cases/privacy.py;
tests/e2e/test_privacy.py runs them on PostgreSQL and through a real server)."""

from __future__ import annotations

from tests.helpers.cases.privacy import PrivacyCases


class TestPrivacyOnSQLite(PrivacyCases):
    """The privacy cases on a SQLite file each."""
