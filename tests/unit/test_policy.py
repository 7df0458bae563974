"""The policy's four decisions, on hand-made predictions."""

from __future__ import annotations

import numpy as np

from bot.conversation.dialogue import extract_slots
from bot.conversation.policy import Decision, PolicyConfig, decide
from bot.model.nlu import IntentScore, Prediction, scope_scores

CONFIG = PolicyConfig(threshold=0.4, clarify_margin=0.1)


def prediction(*scores: tuple[str, float]) -> Prediction:
    return Prediction([IntentScore(n, c) for n, c in scores], np.zeros(4, np.float32))


def test_confident_answer():
    assert decide(prediction(("order_status", 0.9), ("cancel_order", 0.05)), CONFIG) is Decision.ANSWER


def test_below_threshold_falls_back():
    assert decide(prediction(("order_status", 0.3), ("cancel_order", 0.1)), CONFIG) is Decision.FALLBACK


def test_close_top_two_asks_to_clarify():
    assert decide(prediction(("refund_status", 0.46), ("return_item", 0.41)), CONFIG) is Decision.CLARIFY


def test_asking_for_a_human_hands_off():
    assert decide(prediction(("contact_human", 0.8), ("complaint", 0.1)), CONFIG) is Decision.HANDOFF


def test_a_pressed_button_is_taken_as_said():
    assert decide(prediction(("return_item", 1.0)), CONFIG, explicit=True) is Decision.ANSWER
    assert decide(prediction(("contact_human", 1.0)), CONFIG, explicit=True) is Decision.HANDOFF


def test_slots_found_in_messages():
    assert extract_slots("where is order #NW482913?") == {"order_id": "NW482913"}
    assert extract_slots("order nw 482913, mail me at ann.lee+shop@example.org") == {
        "order_id": "NW482913", "email": "ann.lee+shop@example.org"}
    assert extract_slots("hello") == {}


def test_the_threshold_applies_to_the_out_of_scope_score():
    """A confident ranking with a weak overall response (low energy) is still out of scope."""
    weak = Prediction([IntentScore("order_status", 0.9), IntentScore("cancel_order", 0.05)], np.zeros(4, np.float32),
                      scope=2.0)
    assert decide(weak, PolicyConfig(threshold=3.0, clarify_margin=0.1)) is Decision.FALLBACK
    assert decide(weak, PolicyConfig(threshold=1.0, clarify_margin=0.1)) is Decision.ANSWER


def test_energy_keeps_the_strength_of_the_response_that_confidence_loses():
    strong, weak = np.array([[8.0, 4.0, 0.0]]), np.array([[2.0, -2.0, -6.0]])  # same softmax
    assert np.allclose(scope_scores(strong, 1.0, "confidence"), scope_scores(weak, 1.0, "confidence"))
    assert scope_scores(strong, 1.0, "energy") > scope_scores(weak, 1.0, "energy") + 5
    assert np.allclose(scope_scores(strong, 2.0, "energy"), 2.0 * np.log(np.exp(strong / 2.0).sum(-1)))


def test_an_intent_with_its_own_threshold_falls_back_below_it_and_others_do_not():
    config = PolicyConfig(threshold=0.4, clarify_margin=0.1, intent_thresholds={"refund_status": 0.8})
    assert decide(prediction(("refund_status", 0.7), ("return_item", 0.1)), config) is Decision.FALLBACK
    assert decide(prediction(("refund_status", 0.85), ("return_item", 0.1)), config) is Decision.ANSWER
    assert decide(prediction(("return_item", 0.7), ("refund_status", 0.1)), config) is Decision.ANSWER
