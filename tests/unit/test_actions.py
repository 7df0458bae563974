"""The rasa-sdk actions' forms run in-process against a real SQLite store (the cases of
tests/helpers/cases/actions.py; tests/e2e/test_actions.py runs them on PostgreSQL, and the actions behind the
rasa-sdk action server)."""

from __future__ import annotations

from tests.helpers.cases.actions import ActionsCases


class TestActionsOnSQLite(ActionsCases):
    """The form cases on a SQLite file each."""
