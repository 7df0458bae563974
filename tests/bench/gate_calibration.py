"""Gate calibration on BANKING77: how often the redistillation gate (distill/gate.py) rejects a candidate that is
no worse, and accepts one that is about a point worse, at its default settings. The defaults were chosen with it.

Cheap stand-ins for real runs: logistic-regression heads over cached all-MiniLM-L6-v2 embeddings (the student's
initialisation, loaded the way the project loads it). The golden set is a stratified 3,080-message validation
slice carved from BANKING77's *train* split and never trained on; a further 1,000-message slice of train fits each
head's temperature (as the pipeline does on its validation split). BANKING77's test split tunes nothing: it only
serves the n=377 statement (subsamples of 13 messages from each of 29 intents, like data/test.jsonl).

"Another seed" for a linear head: each head trains on its own random 90% of the pool, from its own random
initialisation, in its own minibatch order, with dropout on the embeddings. Each repetition trains a current
model, an equal candidate (same recipe, another seed) and a worse candidate (the same recipe with a share of its
training labels replaced by another intent); the next repetition's current model is the pinned baseline for the
drift check. An out-of-scope arm holds 7 intents out of training (their golden messages become `oos`; each head
gets the pipeline's threshold, tuned on the calibration slice) to measure the out-of-scope recall check.

    .venv/bin/python tests/bench/gate_calibration.py [--repetitions 200] [--corruption auto] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch
from common import DATASETS, ROOT, Embedder, provenance
from scipy.stats import binomtest
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from distill.calibration import fit_temperature, tune_threshold
from distill.data import load_examples
from distill.gate import Check, CheckName, Evidence, GateSettings, Predictions, judge
from distill.weights import default_cache_dir

STUDENT = "all-MiniLM-L6-v2"
MAX_LENGTH = 64
OOS = "oos"
TOLERANCES = (0.0075, 0.009, 0.0095, 0.01, 0.0105, 0.011, 0.0125, 0.015)
ECE_TOLERANCES = (0.005, 0.01, 0.015, 0.02)
OOS_TOLERANCES = (0.05, 0.075, 0.1, 0.125)
PILOT_RATES = (0.03, 0.05, 0.07, 0.1)
DROP_GRID = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.12, 0.15)
OOS_DROP_GRID = (0.05, 0.1, 0.15, 0.2)


@dataclass(frozen=True)
class Split:
    """One arm's data. `calib_y` is -1 for out-of-scope messages; gold lists are label names."""

    labels: list[str]
    pool_x: torch.Tensor
    pool_y: torch.Tensor
    calib_x: torch.Tensor
    calib_y: torch.Tensor
    golden_x: torch.Tensor
    golden_gold: list[str]
    test_x: torch.Tensor
    test_gold: list[str]


def load_splits(cache_dir: Path, golden_size: int, calibration_size: int, held_out_intents: int,
                seed: int) -> tuple[Split, Split]:
    """The in-scope arm (all 77 intents) and the out-of-scope arm (`held_out_intents` intents never trained on).
    Golden and calibration slices are carved from train, stratified; the rest of train is the training pool."""
    train = load_examples(DATASETS / "banking77" / "train.csv")
    test = load_examples(DATASETS / "banking77" / "test.csv")
    names = sorted({e.intent for e in train})
    embed = Embedder(STUDENT, cache_dir, MAX_LENGTH)  # the project's cache, shared with redistill_attack.py
    x, tx = embed([e.text for e in train]).numpy(), embed([e.text for e in test]).numpy()
    y = np.array([e.intent for e in train])
    rest, golden = train_test_split(np.arange(len(y)), test_size=golden_size, stratify=y, random_state=seed)
    pool, calib = train_test_split(rest, test_size=calibration_size, stratify=y[rest], random_state=seed)
    outside = set(np.random.default_rng(seed).choice(names, held_out_intents, replace=False).tolist())
    t = torch.from_numpy

    def split(known: list[str]) -> Split:
        code = {name: i for i, name in enumerate(known)}
        inside = np.array([code.get(v, -1) for v in y])
        trained = pool[inside[pool] >= 0]
        return Split(known, t(x[trained]), t(inside[trained]), t(x[calib]), t(inside[calib]), t(x[golden]),
                     [v if v in code else OOS for v in y[golden]], t(tx), [e.intent for e in test])

    return split(names), split([n for n in names if n not in outside])


@dataclass(frozen=True)
class Recipe:
    subsample: float
    dropout: float
    epochs: int
    batch: int
    lr: float


@dataclass(frozen=True)
class Head:
    """One trained head's predictions (threshold applied) on the golden set and on the test set."""

    golden: Predictions
    test: Predictions


def train_head(data: Split, recipe: Recipe, seed: int, corruption: float = 0.0, max_drop: float = 0.005) -> Head:
    """A logistic-regression head (minibatch Adam) on a seeded share of the pool, `corruption` of its labels
    replaced by another intent; its temperature fitted on the calibration slice and, when the calibration slice
    has out-of-scope messages, its threshold tuned there the pipeline's way (on the energy score, the highest
    that costs at most `max_drop` of in-scope accuracy)."""
    gen = torch.Generator().manual_seed(seed)
    n, k = len(data.pool_y), len(data.labels)
    rows = torch.randperm(n, generator=gen)[: int(recipe.subsample * n)]
    x, y = data.pool_x[rows], data.pool_y[rows].clone()
    flip = torch.rand(len(y), generator=gen) < corruption
    y[flip] = (y[flip] + torch.randint(1, k, (int(flip.sum()),), generator=gen)) % k
    head = torch.nn.Linear(x.shape[1], k)
    with torch.no_grad():
        head.weight.normal_(0, 0.01, generator=gen)
        head.bias.zero_()
    optimizer = torch.optim.Adam(head.parameters(), lr=recipe.lr)
    for _ in range(recipe.epochs):
        for batch in torch.randperm(len(y), generator=gen).split(recipe.batch):
            keep = (torch.rand(len(batch), x.shape[1], generator=gen) >= recipe.dropout) / (1 - recipe.dropout)
            loss = torch.nn.functional.cross_entropy(head(x[batch] * keep), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        logits = head(data.calib_x)
        known = data.calib_y >= 0
        temperature = fit_temperature(logits[known], data.calib_y[known])
        threshold = -np.inf
        if not known.all():
            energy = temperature * torch.logsumexp(logits / temperature, -1)
            threshold = tune_threshold(energy, logits.argmax(-1) == data.calib_y, ~known, max_drop)

        def predict(x: torch.Tensor, gold: list[str]) -> Predictions:
            logits = head(x)
            energy = temperature * torch.logsumexp(logits / temperature, -1)
            confidence, index = torch.softmax(logits / temperature, -1).max(-1)
            return Predictions(gold, [data.labels[i] if e >= threshold else OOS
                                      for i, e in zip(index.tolist(), energy.tolist())], confidence.numpy())

        return Head(predict(data.golden_x, data.golden_gold), predict(data.test_x, data.test_gold))


@dataclass(frozen=True)
class Rate:
    """How many of `n` repetitions did something, with its exact (Clopper-Pearson) binomial 95% interval."""

    count: int
    n: int
    rate: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.rate:6.1%} [{self.low:.1%}, {self.high:.1%}] ({self.count}/{self.n})"


def rate(flags: list[bool]) -> Rate:
    count, n = int(sum(flags)), len(flags)
    ci = binomtest(count, n).proportion_ci(0.95)
    return Rate(count, n, count / n, float(ci.low), float(ci.high))


def by_name(checks: list[Check]) -> dict[CheckName, Check]:
    return {c.name: c for c in checks}


def subset(p: Predictions, rows: np.ndarray) -> Predictions:
    return Predictions([p.gold[i] for i in rows], [p.predicted[i] for i in rows], p.confidence[rows])


def degrade(candidate: Predictions, candidate_hits: np.ndarray, current_hits: np.ndarray, among: np.ndarray,
            drop: float, rng: np.random.Generator) -> Predictions:
    """The candidate made worse until its hit rate among `among` messages is exactly `drop` below the current
    model's: that many more of its hits become a wrong intent (confidence kept)."""
    flips = round(drop * among.sum()) - int((current_hits & among).sum() - (candidate_hits & among).sum())
    predicted = list(candidate.predicted)
    intents = sorted({g for g in candidate.gold if g != OOS})
    hits = np.flatnonzero(candidate_hits & among)
    for i in rng.choice(hits, min(max(flips, 0), len(hits)), replace=False):
        other = intents[rng.integers(len(intents) - 1)]
        predicted[i] = other if other != candidate.gold[i] else intents[-1]
    return Predictions(candidate.gold, predicted, candidate.confidence)


def pick_corruption(data: Split, recipe: Recipe, heads: int, seed: int) -> tuple[float, dict[str, float]]:
    """The label-corruption rate whose mean golden-set drop is 1 point, interpolated from a pilot."""
    accuracy = {}
    with tqdm(total=heads * (len(PILOT_RATES) + 1), desc="pilot (corruption rate)") as bar:
        for j, corruption in enumerate((0.0, *PILOT_RATES)):
            accuracy[corruption] = np.mean([train_head(data, recipe, seed + 1000 * j + i, corruption).golden.correct
                                            .mean() for i in range(heads) if not bar.update()])
    drops = [float(accuracy[0.0] - accuracy[r]) for r in PILOT_RATES]
    chosen = float(np.interp(0.01, np.maximum.accumulate(drops), PILOT_RATES))
    return round(chosen * 200) / 200, {f"{r:g}": d for r, d in zip(PILOT_RATES, drops)}


def smallest_rejected(by_drop: dict[str, Rate]) -> float | None:
    """The smallest simulated drop from which on every larger one is rejected at least 95% of the time."""
    found = None
    for d in reversed(DROP_GRID):
        if by_drop[f"{d:g}"].rate < 0.95:
            break
        found = d
    return found


def percentiles(values: list[float], qs: tuple[int, ...]) -> dict[str, float]:
    return {f"p{q}": float(np.percentile(values, q)) for q in qs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=200,
                        help="repetitions of the in-scope arm; each trains a current model, an equal and a worse "
                             "candidate (default 200)")
    parser.add_argument("--corruption", default="auto",
                        help="share of the worse candidate's training labels replaced, e.g. 0.05; 'auto' (default) "
                             "interpolates, from a pilot of --pilot-heads heads per rate, the rate whose mean "
                             "golden-set drop is 1 point")
    parser.add_argument("--pilot-heads", type=int, default=8, help="heads per rate in the corruption pilot (8)")
    parser.add_argument("--oos-repetitions", type=int, default=80,
                        help="repetitions of the out-of-scope arm (current and equal candidate) (default 80)")
    parser.add_argument("--held-out-intents", type=int, default=7,
                        help="intents the out-of-scope arm never trains on; their golden messages are `oos` (7)")
    parser.add_argument("--oos-max-accuracy-drop", type=float, default=0.05,
                        help="in-scope accuracy the out-of-scope threshold may cost (0.05: looser than the pipeline's "
                             "0.005, at which linear heads catch only ~9%% of these held-out banking intents; at 0.05 "
                             "they catch ~43%%, near a served bot's 40-66%% on CLINC150 and where recall varies most)")
    parser.add_argument("--golden-size", type=int, default=3080, help="golden (validation) slice of train (3080)")
    parser.add_argument("--calibration-size", type=int, default=1000,
                        help="slice of train for temperature scaling and the out-of-scope threshold (1000)")
    parser.add_argument("--subsample", type=float, default=0.9, help="share of the pool each head trains on (0.9)")
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout on embeddings while training (0.1)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per head (8)")
    parser.add_argument("--batch", type=int, default=512, help="minibatch size (512)")
    parser.add_argument("--lr", type=float, default=0.1, help="Adam learning rate (0.1)")
    parser.add_argument("--small-n", type=int, default=377, help="size of the small golden set simulated (377)")
    parser.add_argument("--small-intents", type=int, default=29,
                        help="intents in the small golden set, equally many messages each (29, as data/test.jsonl)")
    parser.add_argument("--small-repetitions", type=int, default=200,
                        help="subsamples of the test predictions per simulated regression (200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits and of every head (0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: the heads' matrices are small, more threads cost more than they give)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                        help="weights and embedding cache (default: $DISTILBOT_CACHE or ~/.cache/distilbot)")
    parser.add_argument("--out", type=Path,
                        help="JSON results (default: tests/bench/results/gate_calibration-<date>.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started, load_before = time.perf_counter(), os.getloadavg()
    settings = GateSettings()
    recipe = Recipe(args.subsample, args.dropout, args.epochs, args.batch, args.lr)
    main_arm, oos_arm = load_splits(args.cache_dir, args.golden_size, args.calibration_size, args.held_out_intents,
                                    args.seed)
    base = 10_000_000 * args.seed
    if args.corruption == "auto":
        corruption, pilot = pick_corruption(main_arm, recipe, args.pilot_heads, base + 9_000_000)
    else:
        corruption, pilot = float(args.corruption), {}

    current, equal, worse = [], [], []
    for r in tqdm(range(args.repetitions), desc="in-scope arm: training heads"):
        current.append(train_head(main_arm, recipe, base + 3 * r))
        equal.append(train_head(main_arm, recipe, base + 3 * r + 1))
        worse.append(train_head(main_arm, recipe, base + 3 * r + 2, corruption))
    verdicts: dict[str, list[dict[CheckName, Check]]] = {"equal": [], "worse": []}
    for r in tqdm(range(args.repetitions), desc="in-scope arm: judging"):
        baseline = current[(r + 1) % args.repetitions].golden
        for kind, candidate in (("equal", equal[r]), ("worse", worse[r])):
            verdicts[kind].append(by_name(judge(Evidence(current[r].golden, candidate.golden, baseline), settings)))

    def test_drop(a: Head, b: Head) -> float:
        return float(a.test.correct.mean() - b.test.correct.mean())

    drops = {kind: {"golden_mean": float(np.mean([v[CheckName.GOLDEN].estimate for v in verdicts[kind]])),
                    "golden_sd": float(np.std([v[CheckName.GOLDEN].estimate for v in verdicts[kind]])),
                    "test_mean": float(np.mean([test_drop(c, k) for c, k in zip(current, heads)]))}
             for kind, heads in (("equal", equal), ("worse", worse))}
    rates = {kind: {**{str(name): rate([not v[name].passed for v in runs]) for name in
                       (CheckName.GOLDEN, CheckName.DRIFT, CheckName.CALIBRATION, CheckName.PER_INTENT)},
                    "whole gate": rate([not all(c.passed for c in v.values()) for v in runs])}
             for kind, runs in verdicts.items()}

    def sweep(name: CheckName, tolerances: tuple[float, ...]) -> dict[str, dict[str, Rate]]:
        return {f"{t:g}": {kind: rate([v[name].high > t for v in runs]) for kind, runs in verdicts.items()}
                for t in tolerances}

    sweeps = {"golden": sweep(CheckName.GOLDEN, TOLERANCES), "drift": sweep(CheckName.DRIFT, TOLERANCES),
              "calibration": sweep(CheckName.CALIBRATION, ECE_TOLERANCES)}
    bounds = {kind: {str(name): percentiles([v[name].high for v in runs], (1, 5, 50, 95, 99))
                     for name in (CheckName.GOLDEN, CheckName.DRIFT, CheckName.CALIBRATION)}
              | {"per_intent worst drop": percentiles([v[CheckName.PER_INTENT].estimate for v in runs], (50, 95, 99))}
              for kind, runs in verdicts.items()}

    oos_verdicts: list[dict[CheckName, Check]] = []
    oos_power: dict[float, list[bool]] = {d: [] for d in OOS_DROP_GRID}
    rng = np.random.default_rng(args.seed)
    for r in tqdm(range(args.oos_repetitions), desc="out-of-scope arm"):
        cur, cand = (train_head(oos_arm, recipe, base + 5_000_000 + 2 * r + i, max_drop=args.oos_max_accuracy_drop)
                     .golden for i in (0, 1))
        oos_verdicts.append(by_name(judge(Evidence(cur, cand), settings)))
        among = np.array([g == OOS for g in cur.gold])
        cur_hits, cand_hits = (np.array([p == OOS for p in m.predicted]) for m in (cur, cand))
        for d in OOS_DROP_GRID:
            worse_oos = degrade(cand, cand_hits, cur_hits, among, d, rng)
            oos_power[d].append(not by_name(judge(Evidence(cur, worse_oos), settings))[CheckName.OOS_RECALL].passed)
    oos = {"messages": oos_verdicts[0][CheckName.OOS_RECALL].messages,
           "recall_mean": float(np.mean([v[CheckName.OOS_RECALL].detail["before"] for v in oos_verdicts])),
           "equal_reject": rate([not v[CheckName.OOS_RECALL].passed for v in oos_verdicts]),
           "equal_whole_gate_reject": rate([not all(c.passed for c in v.values()) for v in oos_verdicts]),
           "equal_upper_bounds": percentiles([v[CheckName.OOS_RECALL].high for v in oos_verdicts], (50, 95, 99)),
           "sweep_equal_reject": {f"{t:g}": rate([v[CheckName.OOS_RECALL].high > t for v in oos_verdicts])
                                  for t in OOS_TOLERANCES},
           "reject_rate_by_true_recall_drop": {f"{d:g}": rate(f) for d, f in oos_power.items()}}

    per_intent = args.small_n // args.small_intents
    everyone = np.ones(len(main_arm.test_gold), dtype=bool)
    golden_bounds: dict[str, list[float]] = {}
    small: dict[str, dict[str, list[bool]]] = {"golden check": {}, "whole gate": {}}
    ece_bounds = []
    for s in tqdm(range(args.small_repetitions), desc=f"n={args.small_n} subsamples"):
        r = s % args.repetitions
        intents = rng.choice(main_arm.labels, args.small_intents, replace=False)
        rows = np.concatenate([rng.choice(np.flatnonzero(np.array(main_arm.test_gold) == i), per_intent,
                                          replace=False) for i in intents])
        cur = current[r].test
        for d in (0.0, *DROP_GRID):
            cand = equal[r].test if d == 0 else degrade(equal[r].test, equal[r].test.correct, cur.correct, everyone,
                                                        d, rng)
            checks = by_name(judge(Evidence(subset(cur, rows), subset(cand, rows)), settings))
            golden_bounds.setdefault(f"{d:g}", []).append(checks[CheckName.GOLDEN].high)
            small["golden check"].setdefault(f"{d:g}", []).append(not checks[CheckName.GOLDEN].passed)
            small["whole gate"].setdefault(f"{d:g}", []).append(not all(c.passed for c in checks.values()))
            if d == 0:
                ece_bounds.append(checks[CheckName.CALIBRATION].high)
    needed = float(np.percentile(golden_bounds["0"], 95))
    # the tolerance at which the small set would reject an equal candidate 5% of the time
    small[f"golden check at tolerance {needed:.4f}"] = {d: [h > needed for h in bounds]
                                                        for d, bounds in golden_bounds.items()}
    small_rates = {scope: {d: rate(f) for d, f in by_drop.items()} for scope, by_drop in small.items()}
    smallest = {scope: smallest_rejected(by_drop) for scope, by_drop in small_rates.items()}

    wall = time.perf_counter() - started
    result = {
        **provenance("gate_calibration"), "wall_s": round(wall, 1),
        "load_average_at_start": [round(v, 2) for v in load_before],
        "settings": asdict(settings),
        "data": {"dataset": "BANKING77", "golden": f"{args.golden_size} messages, stratified slice of train "
                 "(validation, never trained on)", "calibration": f"{args.calibration_size} messages of train",
                 "training_pool": len(main_arm.pool_y), "test": "BANKING77 test, only for the n=377 figures",
                 "embeddings": STUDENT},
        "recipe": asdict(recipe) | {"seed_randomness": "90% subsample, initialisation, minibatch order, dropout"},
        "repetitions": args.repetitions, "corruption": corruption, "corruption_pilot_drops": pilot,
        "golden_accuracy_current_mean": float(np.mean([h.golden.correct.mean() for h in current])),
        "drops": drops,
        "reject_rates": {kind: {k: asdict(v) for k, v in r.items()} for kind, r in rates.items()},
        "upper_bounds": bounds,
        "sweeps": {name: {t: {kind: asdict(v) for kind, v in r.items()} for t, r in by_t.items()}
                   for name, by_t in sweeps.items()},
        "oos_arm": {"repetitions": args.oos_repetitions, "held_out_intents": args.held_out_intents,
                    **{k: (asdict(v) if isinstance(v, Rate) else
                           {kk: asdict(vv) if isinstance(vv, Rate) else vv for kk, vv in v.items()}
                           if isinstance(v, dict) else v) for k, v in oos.items()}},
        "small_golden_set": {"n": per_intent * args.small_intents,
                             "design": f"{per_intent} test messages from each of {args.small_intents} random intents",
                             "repetitions": args.small_repetitions,
                             "reject_rate_by_true_drop": {s: {d: asdict(v) for d, v in r.items()}
                                                          for s, r in small_rates.items()},
                             "smallest_drop_rejected_95pct": smallest,
                             "tolerance_for_5pct_equal_rejects": needed,
                             "equal_golden_upper_bounds": percentiles(golden_bounds["0"], (50, 95, 99)),
                             "equal_calibration_upper_bounds": percentiles(ece_bounds, (50, 95, 99))},
    }
    out = args.out or ROOT / "tests" / "bench" / "results" / f"gate_calibration-{date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result, rates, sweeps, oos, small_rates, smallest))
    print(f"results written to {out}")


def report(result: dict, rates: dict, sweeps: dict, oos: dict, small_rates: dict, smallest: dict) -> str:
    s = result["settings"]
    lines = [f"Gate calibration, BANKING77: golden set = {result['data']['golden']}; {result['repetitions']} "
             f"repetitions; wall {result['wall_s']:.0f} s",
             f"settings: tolerance {s['tolerance']}, drift {s['drift_tolerance']}, oos {s['oos_tolerance']}, ece "
             f"{s['ece_tolerance']}, intent_drop {s['intent_drop']}, confidence {s['confidence']}, resamples "
             f"{s['resamples']}",
             f"current model golden accuracy (mean) {result['golden_accuracy_current_mean']:.2%}; worse candidate: "
             f"{result['corruption']:.1%} of labels corrupted",
             f"mean drop vs current, golden (sd) / test: equal {100 * result['drops']['equal']['golden_mean']:+.2f} "
             f"({100 * result['drops']['equal']['golden_sd']:.2f}) / {100 * result['drops']['equal']['test_mean']:+.2f}"
             f" points; worse {100 * result['drops']['worse']['golden_mean']:+.2f} "
             f"({100 * result['drops']['worse']['golden_sd']:.2f}) / {100 * result['drops']['worse']['test_mean']:+.2f}"
             " points", "",
             f"{'check':<14} {'equal candidate rejected':>36} {'worse candidate accepted':>36}"]
    for name in rates["equal"]:
        worse = rates["worse"][name]
        accepted = Rate(worse.n - worse.count, worse.n, 1 - worse.rate, 1 - worse.high, 1 - worse.low)
        lines.append(f"{name:<14} {rates['equal'][name]!s:>36} {accepted!s:>36}")
    for check, by_t in sweeps.items():
        lines += ["", f"{check}: tolerance → equal rejected / worse accepted"]
        for t, r in by_t.items():
            lines.append(f"  {t:>7}  {r['equal'].rate:6.1%}  /  {1 - r['worse'].rate:6.1%}")
    lines += ["", f"out of scope ({oos['messages']} oos golden messages, {result['oos_arm']['repetitions']} reps, "
              f"recall {oos['recall_mean']:.1%}): equal rejected {oos['equal_reject']}, whole gate "
              f"{oos['equal_whole_gate_reject']}",
              "  rejected by true recall drop: " + ", ".join(f"{d}: {r.rate:.0%}" for d, r in
                                                           oos["reject_rate_by_true_recall_drop"].items()),
              "  tolerance sweep, equal rejected: " + ", ".join(f"{t}: {r.rate:.1%}" for t, r in
                                                               oos["sweep_equal_reject"].items()),
              "", f"n={result['small_golden_set']['n']} ({result['small_golden_set']['design']}), rejected by true "
              "drop (points):"]
    for scope, by_drop in small_rates.items():
        lines.append(f"  {scope}: " + ", ".join(f"{100 * float(d):g}: {r.rate:.0%}" for d, r in by_drop.items())
                     + f"; smallest rejected ≥95%: {smallest[scope]}")
    small = result["small_golden_set"]
    lines.append(f"  equal candidates' upper bounds: golden {small['equal_golden_upper_bounds']}, calibration "
                 f"{small['equal_calibration_upper_bounds']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
