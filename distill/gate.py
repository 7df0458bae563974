"""The redistillation gate: publish a candidate only when the evidence rules out a regression.

Every check compares the candidate with the current model (or a pinned baseline) on the same messages. Messages
are resampled jointly for both models (paired bootstrap), so the noise they share cancels and only their
disagreements count. A "must not drop" check passes when the one-sided upper confidence bound of the drop is within
its tolerance: a good-looking point estimate on a small set is not enough. The defaults in `GateSettings` were
chosen with tests/bench/gate_calibration.py."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

import numpy as np

ECE_BINS = 15
SLACK = 1e-12
"""Float noise in differences of fractions (10/40 - 0/40) must not fail a check that sits exactly at its limit."""


@dataclass(frozen=True, eq=False)
class Predictions:
    """One model on one labelled set. `predicted` already has the served out-of-scope threshold applied (the
    out-of-scope label when under it); `confidence` is the top-class probability, one per message."""

    gold: list[str]
    predicted: list[str]
    confidence: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "confidence", np.asarray(self.confidence, dtype=float))
        if not len(self.gold) == len(self.predicted) == len(self.confidence):
            raise ValueError(f"gold ({len(self.gold)}), predicted ({len(self.predicted)}) and confidence "
                             f"({len(self.confidence)}) must have one entry per message")

    def __len__(self) -> int:
        return len(self.gold)

    @property
    def correct(self) -> np.ndarray:
        return np.array([p == g for p, g in zip(self.predicted, self.gold)], dtype=bool)

    def same_as(self, other: Predictions) -> bool:
        return self.predicted == other.predicted and np.array_equal(self.confidence, other.confidence)


@dataclass(frozen=True)
class GateSettings:
    """Chosen with tests/bench/gate_calibration.py (results/gate_calibration-2026-11-29.json): BANKING77, a
    3,080-message golden set carved from train, 200 repetitions of logistic heads on all-MiniLM-L6-v2 embeddings.
    Equal candidates (another seed) disagree with the current model on ~3% of messages, so their measured drop
    has an sd of 0.34 points; no tolerance keeps both error rates under 5% against a 1.1-point-worse candidate.
    These defaults favour never publishing a regression: the whole gate accepted the worse candidate in 3.0%
    of repetitions and rejected an equal one in 8.0% (a rejected night only waits for the next)."""

    tolerance: float = 0.01
    """Golden-set accuracy the candidate may lose (upper bound of the drop). Measured: equal candidates rejected
    6.5%, 1.1-point-worse ones accepted 4.5%; 0.0105 would give 5.0% / 6.5%, 0.0075 20.5% / 1.5%. Also the limit
    for held-out confirmations."""
    drift_tolerance: float = 0.0125
    """Accuracy the candidate may have lost against the pinned baseline: a little over one night's tolerance,
    so losses cannot add up past 1.25 points while adding few rejections (equal candidates: 1.5%)."""
    oos_tolerance: float = 0.1
    """Out-of-scope recall the candidate may lose (upper bound). With 224 out-of-scope golden messages at ~42%
    recall, equal candidates' upper bounds reach 9.7 points (95th percentile): 0.05 rejected 26% of them, 0.1
    rejects 2.5% and still catches every true 10-point loss."""
    ece_tolerance: float = 0.015
    """Calibration error the candidate may gain (upper bound). Equal candidates' 99th percentile: 0.013."""
    intent_drop: float = 0.25
    """Recall any one intent may lose (point estimate: ~40 messages an intent). Equal candidates' worst intent
    lost 0.22 at the 99th percentile."""
    min_held_out: int = 10
    """Fewer held-out corrections (or confirmations) than this say too little to count."""
    confidence: float = 0.95
    """One-sided confidence of every bound."""
    resamples: int = 2000
    seed: int = 0
    oos_label: str = "oos"


class CheckName(StrEnum):
    GOLDEN = "golden"
    DRIFT = "drift"
    OOS_RECALL = "oos_recall"
    CALIBRATION = "calibration"
    PER_INTENT = "per_intent"
    CORRECTIONS = "corrections"
    CONFIRMATIONS = "confirmations"


@dataclass
class Check:
    """One check's outcome. `low`/`high` are the one-sided bounds at the settings' confidence (the 5% and 95%
    bootstrap quantiles at 0.95; together a 90% interval); drop checks decide on `high`, the corrections check on
    `low`, the per-intent check on `estimate`. A check that was skipped or had too few messages has
    `counted=False` and passes."""

    name: CheckName
    passed: bool
    counted: bool
    estimate: float | None
    low: float | None
    high: float | None
    limit: float | None
    messages: int
    sentence: str
    detail: dict[str, float]

    def to_dict(self) -> dict:
        return {**asdict(self), "name": str(self.name)}


@dataclass(frozen=True)
class Evidence:
    """What the gate sees: each model's predictions on the golden set and the held-out agent feedback."""

    golden_current: Predictions
    golden_candidate: Predictions
    golden_baseline: Predictions | None = None
    corrections_current: Predictions | None = None
    corrections_candidate: Predictions | None = None
    confirmations_current: Predictions | None = None
    confirmations_candidate: Predictions | None = None


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def _interval(estimate: float, samples: np.ndarray, confidence: float) -> Interval:
    low, high = np.nanquantile(samples, [1 - confidence, confidence])
    return Interval(float(estimate), float(low), float(high))


def _resample(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """How many times each message is drawn in each resample (rows), drawing message indices with replacement.
    Every statistic here is a weighted sum over messages, so one matrix product resamples it; the same matrix
    serves both models (paired) and every check on the set."""
    idx = rng.integers(0, n, size=(resamples, n))
    return np.bincount((np.arange(resamples)[:, None] * n + idx).ravel(), minlength=resamples * n).reshape(
        resamples, n).astype(float)


def _full(n: int) -> np.ndarray:
    """The sample itself as one 'resample', so point estimates share the resampled code path."""
    return np.ones((1, n))


def _rate_drop(before: np.ndarray, after: np.ndarray, among: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per resample, the fall of the share of `among` messages that are hits (before minus after)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts @ ((before.astype(float) - after) * among) / (counts @ among.astype(float))


def _ece(p: Predictions, counts: np.ndarray) -> np.ndarray:
    """Per resample: ECE over 15 equal-width bins, as the sum over bins of |Σ confidence − Σ correct| / n."""
    bins = np.clip(np.ceil(p.confidence * ECE_BINS).astype(int) - 1, 0, ECE_BINS - 1)
    gaps = np.zeros((len(p), ECE_BINS))
    gaps[np.arange(len(p)), bins] = p.confidence - p.correct
    return np.abs(counts @ gaps).sum(1) / len(p)


def _mcnemar(before: np.ndarray, after: np.ndarray) -> float:
    """Exact McNemar p-value (two-sided) from the messages only one of the two models gets right."""
    from scipy.stats import binomtest  # here: scipy.stats takes a second to import, the CLI imports this module

    only_before, only_after = int((before & ~after).sum()), int((~before & after).sum())
    return float(binomtest(only_before, only_before + only_after).pvalue) if only_before + only_after else 1.0


def _pts(value: float) -> str:
    return f"{round(100 * value, 2) + 0.0:.2f} points"  # + 0.0: never "-0.00"


def _worse(high: float, worse: str = "worse", better: str = "better") -> str:
    """The upper bound of a drop in words: 'at most 0.40 points worse', 'no worse (at least 0.20 points better)'."""
    if high > 0:
        return f"at most {_pts(high)} {worse}"
    return f"no {worse} (at least {_pts(-high)} {better})" if high < 0 else f"no {worse}"


def _skipped(name: CheckName, sentence: str, messages: int = 0) -> Check:
    return Check(name, True, False, None, None, None, None, messages, sentence, {})


def _accuracy_check(name: CheckName, before: Predictions, after: Predictions, counts: np.ndarray, limit: float,
                    confidence: float, what: str, against: str) -> Check:
    """Accuracy of `after` against `before` on the same messages; passes when the drop's upper bound ≤ limit."""
    b, a = before.correct, after.correct
    everyone = np.ones(len(b), dtype=bool)
    drop = _interval(_rate_drop(b, a, everyone, _full(len(b)))[0], _rate_drop(b, a, everyone, counts), confidence)
    passed = drop.high <= limit + SLACK
    head = (f"On the {len(b):,} {what} the new model is right {a.mean():.1%} of the time against {b.mean():.1%} "
            f"for {against}; with {confidence:.0%} confidence it is {_worse(drop.high)}")
    tail = (f", within the {_pts(limit)} allowed, so this check passes." if passed else
            f", which is more than the {_pts(limit)} allowed, so this check fails.")
    return Check(name, passed, True, drop.estimate, drop.low, drop.high, limit, len(b), head + tail,
                 {"before": float(b.mean()), "after": float(a.mean()), "mcnemar_p": _mcnemar(b, a)})


def _oos_check(before: Predictions, after: Predictions, counts: np.ndarray, s: GateSettings) -> Check:
    among = np.array([g == s.oos_label for g in before.gold])
    if not among.any():
        return _skipped(CheckName.OOS_RECALL, "The golden set has no out-of-scope messages, so recognising them "
                                              "was not checked.")
    b = np.array([p == s.oos_label for p in before.predicted]) & among
    a = np.array([p == s.oos_label for p in after.predicted]) & among
    drop = _interval(_rate_drop(b, a, among, _full(len(b)))[0], _rate_drop(b, a, among, counts), s.confidence)
    passed = drop.high <= s.oos_tolerance + SLACK
    n, before_recall, after_recall = int(among.sum()), b.sum() / among.sum(), a.sum() / among.sum()
    sentence = (f"Of the {n} golden-set messages the bot should not answer (out of scope), the new model recognises "
                f"{after_recall:.1%} against {before_recall:.1%} for the current model; with {s.confidence:.0%} "
                f"confidence that share is {_worse(drop.high, 'lower', 'higher')}"
                + (f", within the {_pts(s.oos_tolerance)} allowed, so this check passes." if passed else
                   f", which is more than the {_pts(s.oos_tolerance)} allowed, so this check fails."))
    return Check(CheckName.OOS_RECALL, passed, True, drop.estimate, drop.low, drop.high, s.oos_tolerance, n,
                 sentence, {"before": float(before_recall), "after": float(after_recall), "mcnemar_p": _mcnemar(b, a)})


def _calibration_check(before: Predictions, after: Predictions, counts: np.ndarray, s: GateSettings) -> Check:
    b, a = float(_ece(before, _full(len(before)))[0]), float(_ece(after, _full(len(after)))[0])
    gain = _interval(a - b, _ece(after, counts) - _ece(before, counts), s.confidence)
    passed = gain.high <= s.ece_tolerance + SLACK
    bound = f"worsens by at most {gain.high:.3f}" if gain.high >= 0 else f"improves by at least {-gain.high:.3f}"
    sentence = (f"How far the model's stated confidence is from how often it is right (calibration error, lower is "
                f"better) goes from {b:.3f} to {a:.3f}; with {s.confidence:.0%} confidence it {bound}"
                + (f", within the {s.ece_tolerance:.3f} allowed, so this check passes." if passed else
                   f", which is more than the {s.ece_tolerance:.3f} allowed, so this check fails."))
    return Check(CheckName.CALIBRATION, passed, True, gain.estimate, gain.low, gain.high, s.ece_tolerance,
                 len(before), sentence, {"before": b, "after": a})


def _per_intent_check(before: Predictions, after: Predictions, counts: np.ndarray, s: GateSettings) -> Check:
    """Decided on the point estimate (a handful of messages per intent); the interval is for the worst intent."""
    intents = sorted({g for g in before.gold if g != s.oos_label})
    if not intents:
        return _skipped(CheckName.PER_INTENT, "The golden set has no in-scope messages, so no intent was checked.")
    code = {name: i for i, name in enumerate(intents)}
    k = len(intents)
    gold = np.array([code.get(g, k) for g in before.gold])  # k: out of scope, no intent

    members = np.zeros((len(before), k))
    in_scope = gold < k
    members[np.flatnonzero(in_scope), gold[in_scope]] = 1.0
    lost = members * (before.correct.astype(float) - after.correct)[:, None]

    def drops(counts: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (counts @ lost) / (counts @ members)

    point, sizes = drops(_full(len(before)))[0], members.sum(0)
    worst = int(np.argmax(point))
    interval = _interval(point[worst], drops(counts)[:, worst], s.confidence)
    failing = {intents[i]: float(point[i]) for i in np.flatnonzero(point > s.intent_drop + SLACK)}
    recall_before = {n: float(before.correct[gold == code[n]].mean()) for n in failing}
    if failing:
        listed = ", ".join(f"{n} (from {recall_before[n]:.0%} to {recall_before[n] - d:.0%} of "
                           f"{int(sizes[code[n]])} messages)" for n, d in failing.items())
        sentence = (f"Recall (the share of an intent's golden-set messages answered with that intent) falls by more "
                    f"than {s.intent_drop:.0%} for {len(failing)} of {k} intents: {listed}; this check fails.")
    else:
        sentence = (f"No intent's recall (the share of its golden-set messages answered with that intent) falls by "
                    f"more than {s.intent_drop:.0%}; the worst off is {intents[worst]} "
                    f"({-point[worst]:+.0%} on {int(sizes[worst])} messages), so this check passes.")
    return Check(CheckName.PER_INTENT, not failing, True, interval.estimate, interval.low, interval.high,
                 s.intent_drop, len(before), sentence, failing)


def _corrections_check(before: Predictions, after: Predictions, counts: np.ndarray, s: GateSettings) -> Check:
    """Held-out corrections are messages an agent relabelled: the candidate must be surely better on them."""
    b, a = before.correct, after.correct
    everyone = np.ones(len(b), dtype=bool)
    gain = _interval(-_rate_drop(b, a, everyone, _full(len(b)))[0], -_rate_drop(b, a, everyone, counts), s.confidence)
    detail = {"before": float(b.mean()), "after": float(a.mean()), "mcnemar_p": _mcnemar(b, a)}
    head = (f"On the {len(b)} new agent corrections held out from training the new model is right {a.mean():.0%} of "
            f"the time against {b.mean():.0%} for the current model")
    if a.all() and b.all():  # nothing left to improve: as before this gate, it passes
        return Check(CheckName.CORRECTIONS, True, True, gain.estimate, gain.low, gain.high, 0.0, len(b),
                     head + "; both already answer all of them, so this check passes.", detail)
    passed = gain.low > SLACK
    tail = (f"; with {s.confidence:.0%} confidence it is at least {_pts(gain.low)} better, so it has learned from "
            f"the agents and this check passes." if passed else
            f"; it is not surely better (the {s.confidence:.0%} lower bound of the gain is {_pts(gain.low)}), so "
            f"this check fails.")
    return Check(CheckName.CORRECTIONS, passed, True, gain.estimate, gain.low, gain.high, 0.0, len(b), head + tail,
                 detail)


def _held_out(name: CheckName, before: Predictions | None, after: Predictions | None, what: str,
              s: GateSettings) -> Check | None:
    """The not-counted check when a held-out set is missing or too small; None when it is big enough."""
    n = len(after) if after is not None and before is not None else 0
    if n >= s.min_held_out:
        return None
    return _skipped(name, f"{what}: not enough held-out messages (n < {s.min_held_out}); not counted.", n)


def _same_set(name: str, a: Predictions, b: Predictions) -> None:
    if a.gold != b.gold:
        raise ValueError(f"{name}: both models must be scored on the same messages, in the same order")


def judge(evidence: Evidence, settings: GateSettings) -> list[Check]:
    """Every check of the gate, in a fixed order; the candidate may be published when all of them passed."""
    e, s = evidence, settings
    if not len(e.golden_current):
        raise ValueError("the golden set is empty: the gate has nothing to judge on")
    _same_set("golden set", e.golden_current, e.golden_candidate)
    rng = np.random.default_rng(s.seed)
    golden = _resample(rng, len(e.golden_current), s.resamples)
    cur, cand = e.golden_current, e.golden_candidate
    checks = [_accuracy_check(CheckName.GOLDEN, cur, cand, golden, s.tolerance, s.confidence, "golden-set messages",
                              "the current model")]
    if e.golden_baseline is None:
        checks.append(_skipped(CheckName.DRIFT, "No pinned baseline model was given, so drift since the baseline "
                                                "was not checked."))
    elif e.golden_baseline.same_as(cur):
        checks.append(_skipped(CheckName.DRIFT, "The pinned baseline is the current model, so the drift check would "
                                                "only repeat the golden-set check; skipped."))
    else:
        _same_set("golden set (baseline)", e.golden_baseline, cand)
        checks.append(_accuracy_check(CheckName.DRIFT, e.golden_baseline, cand, golden, s.drift_tolerance,
                                      s.confidence, "golden-set messages", "the pinned baseline model"))
    checks += [_oos_check(cur, cand, golden, s), _calibration_check(cur, cand, golden, s),
               _per_intent_check(cur, cand, golden, s)]

    skipped = _held_out(CheckName.CORRECTIONS, e.corrections_current, e.corrections_candidate,
                        "Agent corrections made since the last run and held out from training", s)
    if skipped is None:
        assert e.corrections_current is not None and e.corrections_candidate is not None, "_held_out: both there"
        _same_set("held-out corrections", e.corrections_current, e.corrections_candidate)
        counts = _resample(rng, len(e.corrections_current), s.resamples)
        skipped = _corrections_check(e.corrections_current, e.corrections_candidate, counts, s)
    checks.append(skipped)
    skipped = _held_out(CheckName.CONFIRMATIONS, e.confirmations_current, e.confirmations_candidate,
                        "Agent confirmations and earlier corrections held out from training", s)
    if skipped is None:
        assert e.confirmations_current is not None and e.confirmations_candidate is not None, "_held_out: both there"
        _same_set("held-out confirmations", e.confirmations_current, e.confirmations_candidate)
        counts = _resample(rng, len(e.confirmations_current), s.resamples)
        skipped = _accuracy_check(CheckName.CONFIRMATIONS, e.confirmations_current, e.confirmations_candidate, counts,
                                  s.tolerance, s.confidence,
                                  "agent confirmations and earlier corrections held out from training",
                                  "the current model")
    checks.append(skipped)
    return checks
