"""The redistillation gate's statistics on synthetic predictions: each check fails on the evidence it exists for and
on nothing else, and all pass on a candidate that is fine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from distill.evaluate import expected_calibration_error
from distill.gate import ECE_BINS, CheckName, Evidence, GateSettings, Predictions, _ece, judge

INTENTS = [f"i{k}" for k in range(10)]
PER_INTENT, OOS_MESSAGES = 100, 50
GOLD = [name for name in INTENTS for _ in range(PER_INTENT)] + ["oos"] * OOS_MESSAGES


def model(correct: np.ndarray, gold: list[str] = GOLD, overconfident: bool = False) -> Predictions:
    """Right where `correct`, else the next intent; confident when right (0.95) and not when wrong (0.05), so
    calibration error stays the same whatever the accuracy; `overconfident`: sure of everything (0.999)."""
    wrong = {name: INTENTS[(k + 1) % len(INTENTS)] for k, name in enumerate(INTENTS)} | {"oos": "i0"}
    predicted = [g if ok else wrong[g] for g, ok in zip(gold, correct)]
    return Predictions(list(gold), predicted, np.full(len(gold), 0.999) if overconfident else
                       np.where(correct, 0.95, 0.05))


def current_correct() -> np.ndarray:
    """90% of every intent right (the first 90 of 100), 40 of the 50 out-of-scope messages recognised."""
    position = np.array([i % PER_INTENT for i in range(len(INTENTS) * PER_INTENT)] + list(range(OOS_MESSAGES)))
    in_scope = np.arange(len(GOLD)) < len(INTENTS) * PER_INTENT
    return np.where(in_scope, position < 90, position < 40)


def flip(correct: np.ndarray, intent: str, count: int, to: bool) -> np.ndarray:
    """`count` messages of `intent` that are not `to` become `to`."""
    out = correct.copy()
    rows = [i for i, g in enumerate(GOLD) if g == intent and out[i] != to][:count]
    out[rows] = to
    return out


def held_out(n: int, current_right: int, candidate_right: int) -> tuple[Predictions, Predictions]:
    gold = [INTENTS[i % len(INTENTS)] for i in range(n)]
    return (model(np.arange(n) < current_right, gold), model(np.arange(n) < candidate_right, gold))


def failed(checks) -> set[CheckName]:
    return {c.name for c in checks if not c.passed}


def by_name(checks):
    return {c.name: c for c in checks}


def evidence(candidate: Predictions, baseline: Predictions | None = None, corrections=None,
             confirmations=None) -> Evidence:
    corrections = corrections or held_out(20, 0, 16)
    confirmations = confirmations or held_out(20, 20, 20)
    return Evidence(model(current_correct()), candidate, baseline, *corrections, *confirmations)


def test_a_good_candidate_passes_every_check():
    better = current_correct()
    for intent in INTENTS:
        better = flip(better, intent, 1, True)
    baseline = current_correct()
    for intent in INTENTS:
        baseline = flip(baseline, intent, 1, False)
    checks = judge(evidence(model(better), model(baseline)), GateSettings())
    assert [c.name for c in checks] == list(CheckName)
    assert failed(checks) == set()
    assert all(c.counted for c in checks)
    assert all(c.sentence.endswith("this check passes.") for c in checks)
    json.dumps([c.to_dict() for c in checks])  # goes into the report as it is


def test_a_one_point_golden_set_regression_fails_the_golden_check_only():
    worse = current_correct()
    for intent in INTENTS:
        worse = flip(worse, intent, 1, False)  # 10 of 1,050 messages: 0.95 points
    checks = by_name(judge(evidence(model(worse)), GateSettings()))
    assert failed(checks.values()) == {CheckName.GOLDEN}
    golden = checks[CheckName.GOLDEN]
    assert golden.estimate == pytest.approx(10 / len(GOLD))
    assert golden.low < golden.estimate < golden.high
    assert golden.high > GateSettings().tolerance
    assert golden.detail["mcnemar_p"] == pytest.approx(2 / 2**10)  # 10 discordant, all lost
    assert f"which is more than the {100 * GateSettings().tolerance:.2f} points allowed, so this check fails" \
        in golden.sentence


def test_small_losses_that_add_up_since_the_baseline_fail_the_drift_check_only():
    baseline = current_correct()
    for intent in INTENTS:
        baseline = flip(baseline, intent, 2, True)
    checks = by_name(judge(evidence(model(current_correct()), model(baseline)), GateSettings()))
    assert failed(checks.values()) == {CheckName.DRIFT}
    assert checks[CheckName.DRIFT].high > GateSettings().drift_tolerance


def test_losing_out_of_scope_recall_fails_that_check_only():
    candidate = flip(current_correct(), "oos", 10, False)
    for intent in INTENTS:
        candidate = flip(candidate, intent, 2, True)  # better in scope: golden accuracy does not drop
    checks = by_name(judge(evidence(model(candidate)), GateSettings()))
    assert failed(checks.values()) == {CheckName.OOS_RECALL}
    oos = checks[CheckName.OOS_RECALL]
    assert (oos.detail["before"], oos.detail["after"], oos.messages) == (0.8, 0.6, 50)
    assert oos.estimate == pytest.approx(0.2)


def test_overconfidence_fails_the_calibration_check_only():
    checks = by_name(judge(evidence(model(current_correct(), overconfident=True)), GateSettings()))
    assert failed(checks.values()) == {CheckName.CALIBRATION}
    assert checks[CheckName.CALIBRATION].detail["after"] > checks[CheckName.CALIBRATION].detail["before"] + 0.05


def test_one_intent_losing_30_points_fails_the_per_intent_check_only():
    candidate = flip(current_correct(), "i3", 30, False)  # 90% → 60% of its 100 messages
    for intent in INTENTS:
        if intent != "i3":
            candidate = flip(candidate, intent, 6, True)
    checks = by_name(judge(evidence(model(candidate)), GateSettings()))
    assert failed(checks.values()) == {CheckName.PER_INTENT}
    per_intent = checks[CheckName.PER_INTENT]
    assert per_intent.detail == {"i3": pytest.approx(0.3)}
    assert per_intent.estimate == pytest.approx(0.3)
    assert "i3 (from 90% to 60% of 100 messages)" in per_intent.sentence


def test_corrections_that_do_not_surely_improve_fail_the_corrections_check_only():
    checks = by_name(judge(evidence(model(current_correct()), corrections=held_out(20, 0, 1)), GateSettings()))
    assert failed(checks.values()) == {CheckName.CORRECTIONS}
    assert checks[CheckName.CORRECTIONS].low <= 0


def test_losing_confirmed_answers_fails_the_confirmations_check_only():
    checks = by_name(judge(evidence(model(current_correct()), confirmations=held_out(20, 20, 17)), GateSettings()))
    assert failed(checks.values()) == {CheckName.CONFIRMATIONS}
    assert checks[CheckName.CONFIRMATIONS].estimate == pytest.approx(0.15)


def test_too_few_held_out_messages_are_reported_and_not_counted():
    checks = by_name(judge(evidence(model(current_correct()), corrections=held_out(9, 0, 0),
                                    confirmations=held_out(5, 5, 0)), GateSettings()))
    for name in (CheckName.CORRECTIONS, CheckName.CONFIRMATIONS):
        assert checks[name].passed and not checks[name].counted
        assert checks[name].sentence.endswith("not enough held-out messages (n < 10); not counted.")


def test_checks_without_their_evidence_are_skipped_with_a_sentence():
    gold = GOLD[: len(INTENTS) * PER_INTENT]  # no out-of-scope messages
    current = model(current_correct()[: len(gold)], gold)
    checks = by_name(judge(Evidence(current, current), GateSettings()))
    assert not checks[CheckName.DRIFT].counted and "No pinned baseline" in checks[CheckName.DRIFT].sentence
    assert not checks[CheckName.OOS_RECALL].counted and "no out-of-scope" in checks[CheckName.OOS_RECALL].sentence
    assert not checks[CheckName.CORRECTIONS].counted
    same = by_name(judge(Evidence(current, current, model(current_correct()[: len(gold)], gold)), GateSettings()))
    assert not same[CheckName.DRIFT].counted and "is the current model" in same[CheckName.DRIFT].sentence


def test_the_same_seed_gives_the_same_bounds_and_other_sets_are_refused():
    candidate = model(flip(current_correct(), "i1", 5, False))
    first, second = (judge(evidence(candidate), GateSettings(seed=7)) for _ in range(2))
    assert [c.to_dict() for c in first] == [c.to_dict() for c in second]
    with pytest.raises(ValueError, match="same messages"):
        judge(Evidence(model(current_correct()), model(current_correct()[:-1], GOLD[:-1])), GateSettings())


def test_ece_is_the_evaluation_code_s_ece():
    rng = np.random.default_rng(0)
    logits, labels = torch.randn(500, 7) * 3, torch.from_numpy(rng.integers(0, 7, 500))
    confidence, predicted = torch.softmax(logits, -1).max(-1)
    p = Predictions([str(v) for v in labels.tolist()], [str(v) for v in predicted.tolist()], confidence.numpy())
    expected = expected_calibration_error(logits, labels, bins=ECE_BINS)
    assert _ece(p, np.ones((1, 500)))[0] == pytest.approx(expected, abs=1e-6)
