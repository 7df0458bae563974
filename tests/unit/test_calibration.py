"""Calibration (distill/calibration.py) and the figures it is judged by (distill/evaluate.py): temperature
scaling, the out-of-scope threshold, per-intent thresholds, expected calibration error."""

from __future__ import annotations

import pytest
import torch

from distill.calibration import choose_threshold, fit_temperature, tune_threshold
from distill.evaluate import expected_calibration_error, oos_metrics


def test_temperature_scaling_softens_overconfident_logits():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (400,))
    logits = torch.randn(400, 4)
    logits[torch.arange(200), labels[:200]] += 2.0  # right half the time, but logits scaled ×5: overconfident
    assert fit_temperature(logits * 5, labels) > 2.0
    confidences = torch.tensor([0.2, 0.5, 0.9, 0.95, 0.99])
    assert choose_threshold(confidences, torch.tensor([0, 1, 1, 1, 1]), 0.0) == pytest.approx(0.5)


def test_calibration_error_of_a_perfectly_calibrated_and_an_overconfident_model():
    labels = torch.tensor([0, 0, 0, 0])
    right_half = torch.zeros(4, 2)  # 50% sure (class 0 by a hair below), right every time
    assert expected_calibration_error(right_half + torch.tensor([1e-4, 0.0]), labels) == pytest.approx(0.5, abs=1e-3)
    confident_wrong = torch.tensor([[0.0, 9.0]] * 4)
    assert expected_calibration_error(confident_wrong, labels) > 0.99


def test_threshold_tuned_on_out_of_scope_examples_catches_them_within_the_accuracy_budget():
    confidences = torch.tensor([0.95, 0.9, 0.85, 0.6, 0.3, 0.2, 0.25, 0.5])
    correct = torch.tensor([True, True, True, False, False, False, False, False])
    is_oos = torch.tensor([False, False, False, False, True, True, True, True])
    threshold = tune_threshold(confidences, correct, is_oos, max_drop=0.0)
    assert threshold == pytest.approx(0.85)  # the highest cut that keeps all three right answers
    found = oos_metrics(confidences, correct, is_oos, threshold)
    assert found["recall"] == 1.0 and found["in_scope_accuracy"] == 0.75 and found["auroc"] > 0.9


def test_per_intent_thresholds_cover_only_imprecise_intents():
    from distill.calibration import intent_thresholds

    # intent 0 is always right; intent 1's predictions below 0.6 are wrong.
    confidences = torch.tensor([0.9, 0.5, 0.95, 0.4, 0.5, 0.7, 0.8])
    predicted = torch.tensor([0, 0, 1, 1, 1, 1, 1])
    correct = torch.tensor([True, True, True, False, False, True, True])
    assert intent_thresholds(confidences, predicted, correct, ["a", "b"], 0.9, min_support=2) == {"b": 0.7}
    assert intent_thresholds(confidences, predicted, correct, ["a", "b"], 0.9, min_support=6) == {}
    assert intent_thresholds(confidences, predicted, correct, ["a", "b"], 0.9, 2, ceiling=0.6) == {"b": 0.6}
