"""Answers as content on SQLite (the cases of tests/helpers/cases/answers.py; tests/e2e/test_answers.py runs them
on PostgreSQL), and the answer-template file's export."""

from __future__ import annotations

from bot.model.template_file import dump_templates, load_templates
from tests.helpers.cases.answers import OWN, AnswerCases


class TestAnswersOnSQLite(AnswerCases):
    """The answer cases on a SQLite file each."""


def test_an_exported_book_reads_back_the_same(tmp_path):
    path = tmp_path / "templates.yml"
    path.write_text(dump_templates(OWN), encoding="utf-8")
    assert load_templates(path) == OWN
