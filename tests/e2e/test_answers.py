"""Answers as content on PostgreSQL (the cases of tests/helpers/cases/answers.py; tests/unit/test_answers.py runs
them on SQLite)."""

from __future__ import annotations

from tests.helpers.cases import OnPostgreSQL
from tests.helpers.cases.answers import AnswerCases


class TestAnswersOnPostgreSQL(OnPostgreSQL, AnswerCases):
    """The answer cases on a fresh PostgreSQL database each."""
