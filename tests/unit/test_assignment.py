"""Round-robin assignment on SQLite (the cases of tests/helpers/cases/assignment.py)."""

from __future__ import annotations

from tests.helpers.cases.assignment import AssignmentCases


class TestAssignmentOnSQLite(AssignmentCases):
    """The assignment cases on a SQLite file each."""
