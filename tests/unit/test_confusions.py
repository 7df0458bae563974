"""The off-diagonal of the validation confusion matrix that metrics.json keeps for the intents page
(distill/evaluate.py `confused`)."""

from __future__ import annotations

from distill.evaluate import confused


def test_only_mistakes_are_counted_by_true_intent_then_chosen_one():
    labels = ["greet", "invoice", "refund"]
    assert confused([0, 1, 1, 1, 2, 2], [0, 2, 2, 1, 1, 2], labels) == {"invoice": {"refund": 2},
                                                                        "refund": {"invoice": 1}}
    assert confused([0, 1], [0, 1], labels) == {}
