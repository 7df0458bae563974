"""Which language a message is in (bot/model/language.py): only a confident guess on a message with enough
letters counts, and a training set's languages are those of a fair share of its messages."""

from __future__ import annotations

import pytest

from bot.model.language import foreign_language, trained_languages

ENGLISH = frozenset({"en"})


@pytest.mark.parametrize(("text", "language"), [
    ("我的订单在哪里", "zh"), ("Ich möchte meine Bestellung stornieren", "de"), ("Je veux parler à quelqu'un", "fr"),
    ("¿Dónde está mi pedido?", "es")])
def test_a_message_in_another_language_is_recognised(text, language):
    assert foreign_language(text, ENGLISH) == language


@pytest.mark.parametrize("text", ["ok", "NW482913", "jane@example.com", "thx", "where is my parcel", "hello there"])
def test_short_or_english_messages_are_not_foreign(text):
    assert foreign_language(text, ENGLISH) is None


def test_nothing_is_foreign_to_a_model_of_unknown_languages():
    assert foreign_language("我的订单在哪里", frozenset()) is None


def test_a_training_sets_languages_are_those_of_a_fair_share_of_it():
    english = ["where is my order", "how do I return an item", "can I change my delivery address"] * 10
    assert trained_languages(english + ["Wo ist meine Bestellung?"]) == ["en"]
    assert trained_languages(english + ["Wo ist meine Bestellung?", "Ich möchte mein Paket zurückschicken"] * 5) == \
        ["de", "en"]
