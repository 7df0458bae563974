"""Redistillation on BANKING77: a student distilled from 70% of the training set meets production. The
other 30% arrive as unlabelled visitor messages, and agents correct 300 of them (with their true labels);
one redistillation run learns from both. Prints the test-set accuracy before and after and the gate's
decision, and writes the JSON report.

    .venv/bin/python tests/bench/redistill_banking77.py [--corrections 300] [--set key=value ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import DATASETS, ROOT, RunInputs, load_config, run

from bot.artifact import Registry
from bot.nlu import IntentClassifier
from bot.store import Conversation, Correction, Message, make_engine, make_sessionmaker
from distill.data import load_examples
from distill.redistill import Gate, Options, redistill


def split(examples, fraction: float, seed: int = 0):
    """Stratified: `fraction` of every intent's examples in the first part."""
    by_intent = defaultdict(list)
    for e in examples:
        by_intent[e.intent].append(e)
    rng, first, second = random.Random(seed), [], []
    for items in by_intent.values():
        rng.shuffle(items)
        cut = round(len(items) * fraction)
        first += items[:cut]
        second += items[cut:]
    return first, second


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
    with sessions.begin() as db:
        for n, (example, guess) in enumerate(zip(messages, predicted)):
            conversation = Conversation(token_hash="x" * 64, slots={})
            db.add(conversation)
            db.flush()
            message = Message(conversation_id=conversation.id, role="user", text=example.text, intent=guess)
            db.add(message)
            db.flush()
            if n in chosen:
                db.add(Correction(message_id=message.id, text=example.text, intent=example.intent,
                                  predicted_intent=guess))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corrections", type=int, default=300, help="agent corrections (default: 300)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="override a distillation config key for both runs (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "bench" / "results" / "redistill_banking77.json",
                        help="the JSON report (default: tests/bench/results/redistill_banking77.json)")
    args = parser.parse_args()
    data = DATASETS / "banking77"
    config = load_config(ROOT / "configs" / "distill.yaml", ["unlabelled_min_confidence=0.6", *args.overrides])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seen, production = split(load_examples(data / "train.csv"), 0.7)
        base = write_jsonl(tmp / "train70.jsonl", seen)
        registry = tmp / "registry"
        first = run(config, RunInputs([base], test=[data / "test.csv"]), registry, force=True)
        db_url = f"sqlite:///{tmp / 'bot.db'}"
        production_store(db_url, registry, production, args.corrections)
        code, report = redistill(Options(registry=registry, db_url=db_url, config=config, train=[base],
                                         golden=data / "test.csv", templates=None, gate=Gate()))
    before, after = report.get("before", {}).get("golden", {}), report.get("after", {}).get("golden", {})
    rows = [("student test accuracy, 70% of the training set", before.get("accuracy")),
            ("after redistillation (+30% unlabelled, +corrections)", after.get("accuracy")),
            ("first run's own metrics.json test accuracy", first.metrics["student"]["accuracy"])]
    for name, value in rows:
        print(f"{name:55s} {'–' if value is None else f'{100 * value:.2f}%'}")
    held = report.get("after", {}).get("held_out", {})
    print(f"held-out corrections: {report.get('before', {}).get('held_out', {}).get('accuracy')} → "
          f"{held.get('accuracy')} ({held.get('messages')} messages)")
    print(f"unlabelled used: {report.get('unlabelled_used')}")
    print(f"decision: {report['decision']} (exit {code}); wall {time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**report, "first_run_metrics": {"student": first.metrics["student"]["accuracy"],
                                                                    "teacher": first.metrics["teacher"]["accuracy"]},
                                    "wall_s": round(time.perf_counter() - start, 1)}, indent=2, default=str) + "\n")
    print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
