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


def test_a_book_with_every_answer_retired_serves_an_empty_index(tmp_path):
    """The retriever of an empty book finds nothing (the dialogue then falls back) instead of failing to build."""
    import numpy as np

    from bot.model.encoder import SentenceEncoder
    from bot.model.retriever import TemplateRetriever
    from bot.model.templates import TemplateBook
    from tests.helpers.tiny import make_tiny_encoder_dir

    encoder = SentenceEncoder.load(make_tiny_encoder_dir(tmp_path / "encoder"))
    empty = TemplateRetriever.build(TemplateBook(slots={}, templates=[]), encoder)
    assert empty.index.ntotal == 0 and empty.search(np.ones(32)) == []
    assert empty.best_for_intent(np.ones(32), "greet") is None
