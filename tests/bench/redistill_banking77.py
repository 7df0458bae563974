"""Redistillation on BANKING77: a student distilled from 70% of the training set meets production. The
other 30% arrive as unlabelled visitor messages, and agents correct 300 of them (with their true labels);
one redistillation run learns from both. The gate's golden set is a stratified validation slice of the 70%
(never trained on, never reported); the test split is only reported on, before and after, with the gate's
decision, and the JSON report is written.

    .venv/bin/python tests/bench/redistill_banking77.py [--corrections 300] [--set key=value ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import DATASETS, ROOT, RunInputs, load_config, provenance, run, split

from bot.infra.store import Conversation, Correction, Message, make_engine, make_sessionmaker
from bot.model.artifact import Artifact, Registry
from bot.model.nlu import IntentClassifier
from distill.data import load_examples
from distill.redistill import Options, predictions, redistill


def write_jsonl(path: Path, examples) -> Path:
    path.write_text("".join(json.dumps({"text": e.text, "intent": e.intent}) + "\n" for e in examples))
    return path


def production_store(db_url: str, registry: Path, messages, corrected: int, seed: int = 0) -> None:
    """The 30% as visitors' messages (with what the current student predicted), `corrected` of them relabelled
    by an agent with their true intent."""
    classifier = IntentClassifier.from_artifact(Registry(registry).current())
    predicted = [classifier.labels[i] for i in classifier.logits([m.text for m in messages]).argmax(-1).tolist()]
    chosen = set(random.Random(seed).sample(range(len(messages)), corrected))
    sessions = make_sessionmaker(make_engine(db_url))
    now = datetime.now(UTC)
    with sessions.begin() as db:
        for n, (example, guess) in enumerate(zip(messages, predicted)):
            # many visitors over the last days, as real traffic arrives (the harvest caps per client and day)
            conversation = Conversation(token_hash="x" * 64, slots={}, client_hash=f"visitor-{n % 1500}")
            db.add(conversation)
            db.flush()
            message = Message(conversation_id=conversation.id, role="user", text=example.text, intent=guess,
                              created_at=now - timedelta(days=3) * (n / len(messages)) - timedelta(minutes=1))
            db.add(message)
            db.flush()
            if n in chosen:
                db.add(Correction(message_id=message.id, text=example.text, intent=example.intent,
                                  predicted_intent=guess))


def _accuracy(scored) -> float:
    return sum(g == p for g, p in zip(scored.gold, scored.predicted)) / len(scored.gold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corrections", type=int, default=300, help="agent corrections (default: 300)")
    parser.add_argument("--golden-fraction", type=float, default=0.15,
                        help="share of the 70%% held out as the gate's golden set (default: 0.15)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="override a distillation config key for both runs (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "bench" / "results" / "redistill_banking77.json",
                        help="the JSON report (default: tests/bench/results/redistill_banking77.json)")
    args = parser.parse_args()
    data = DATASETS / "banking77"
    config = load_config(ROOT / "configs" / "distill.yaml", args.overrides)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seen, production = split(load_examples(data / "train.csv"), 0.7)
        golden, seen = split(seen, args.golden_fraction, seed=1)  # what the gate decides on; never reported
        base, golden_file = write_jsonl(tmp / "train70.jsonl", seen), write_jsonl(tmp / "golden.jsonl", golden)
        registry = tmp / "registry"
        first = run(config, RunInputs([base], test=[golden_file]), registry, force=True)
        db_url = f"sqlite:///{tmp / 'bot.db'}"
        production_store(db_url, registry, production, args.corrections)
        code, report = redistill(Options(registry=registry, db_url=db_url, config=config, train=[base],
                                         golden=golden_file, templates=None, work_dir=tmp / "work"))
        test = load_examples(data / "test.csv")
        versions = Registry(registry).versions()
        accuracy = {v: _accuracy(predictions(Artifact(registry / v), test)) for v in versions}
    rows = [("student test accuracy, 70% of the training set", accuracy[versions[0]]),
            ("after redistillation (+30% unlabelled, +corrections)", accuracy.get(report.get("published")))]
    for name, value in rows:
        print(f"{name:55s} {'–' if value is None else f'{100 * value:.2f}%'}")
    print(f"gate (on {len(golden)} validation messages carved from the 70%, not the test split):")
    for check in report.get("gate", []):
        print(f"  {'pass' if check['passed'] else 'FAIL'}  {check['name']}: {check['sentence']}")
    print(f"unlabelled used: {report.get('unlabelled_used')}")
    print(f"decision: {report['decision']} (exit {code}); wall {time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**provenance("redistill_banking77"), **report, "test_accuracy": accuracy,
                                    "golden_messages": len(golden),
                                    "first_run_teacher_accuracy_on_golden": first.metrics.teacher.accuracy,
                                    "wall_s": round(time.perf_counter() - start, 1)}, indent=2, default=str) + "\n")
    print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
