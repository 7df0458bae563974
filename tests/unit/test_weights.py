"""Resolving a model by name or folder without the pinned weights: a local folder is used as it is, an unknown
name says what is accepted. (The pinned weights themselves: tests/e2e/test_weights.py.)"""

from __future__ import annotations

import pytest

from bot.model.encoder import SentenceEncoder
from distill.weights import WeightsError, resolve_model


def test_a_local_directory_is_used_as_it_is(tiny_student_dir):
    assert resolve_model(str(tiny_student_dir)) == tiny_student_dir
    assert SentenceEncoder.load(tiny_student_dir).dim == 32


def test_an_unknown_name_says_what_is_accepted(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="neither a pinned model"):
        resolve_model("no-such-org/no-such-model")
