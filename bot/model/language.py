"""Which language a message is in (py3langid: a naive-Bayes model over byte n-grams, ~0.06 ms a message on
one core), so a visitor who writes in a language the model was never trained on is handed to a person at once
instead of collecting three fallbacks.

Short messages ("ok", "NW482913", an e-mail address) say little about their language, so only a message with
enough letters whose known languages are all but ruled out counts: tests/bench/languages.py measures how often
English messages would be taken for another language and how often foreign ones are caught."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

CONFIDENT = 0.9
"""The smallest probability that names a training message's language."""
FOREIGN_BELOW = 1e-4
"""A visitor's message is foreign when the languages the model knows have less probability than this together
(chosen on CLINC150's validation split and the demo's training messages: the largest round value at which none
of their English messages is foreign)."""
MIN_LETTERS = 4
"""Fewer letters than this (CJK characters count one each) and no language is guessed."""
SHARE_OF_TRAINING = 0.05
"""A language is one the model was trained in when at least this share of its training messages is confidently in
it (short messages are in none)."""


@dataclass(frozen=True)
class LanguageGuess:
    language: str
    """ISO 639-1 code (en, de, zh, …)."""
    probability: float


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def guess(text: str) -> LanguageGuess | None:
    """The message's language when the guess is confident; None for a short or unclear message."""
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return None
    language, probability = _identifier().classify(text)
    return LanguageGuess(language, float(probability)) if probability >= CONFIDENT else None


def foreign_language(text: str, known: frozenset[str]) -> str | None:
    """The most likely language of `text` when the languages in `known` are all but ruled out (None when `known`
    is empty, the message is short, or it may well be in one of them)."""
    if not known or sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return None
    ranking = _identifier().rank(text)
    if sum(probability for language, probability in ranking if language in known) >= FOREIGN_BELOW:
        return None
    return str(ranking[0][0])


def trained_languages(texts: Iterable[str]) -> list[str]:
    """The languages of a training set: those that at least SHARE_OF_TRAINING of its texts are confidently in."""
    texts = list(texts)
    counts = Counter(found.language for text in texts if (found := guess(text)) is not None)
    return sorted(language for language, count in counts.items() if count / len(texts) >= SHARE_OF_TRAINING)
