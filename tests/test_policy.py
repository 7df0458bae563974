"""The policy's four decisions, on hand-made predictions."""

from __future__ import annotations

import torch

from bot.dialogue import extract_slots
from bot.nlu import IntentScore, Prediction
from bot.policy import Decision, PolicyConfig, decide

CONFIG = PolicyConfig(threshold=0.4, clarify_margin=0.1)


def prediction(*scores: tuple[str, float]) -> Prediction:
    return Prediction([IntentScore(n, c) for n, c in scores], torch.zeros(4))


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
