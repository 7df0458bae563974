"""Language detection (bot/model/language.py) as the bot uses it: what it costs per message, how often an
English message would be taken for another language (and handed to a person for nothing), and how often a
foreign one is caught.

English sets: the demo's data/test.jsonl and BANKING77's test split, which tuned nothing; CLINC150's validation
split and data/train.jsonl chose the defaults (FOREIGN_BELOW, MIN_LETTERS) and are reported apart, labelled so.
Foreign messages: tests/bench/data/foreign_messages.jsonl, 68 customer-service messages in 10 languages written
for this project (short thanks and greetings among them).

    .venv/bin/python tests/bench/languages.py [--out tests/bench/results/languages-DATE.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

from common import DATASETS, ROOT, provenance

from bot.model.language import FOREIGN_BELOW, MIN_LETTERS, foreign_language

ENGLISH = frozenset({"en"})
FOREIGN = ROOT / "tests" / "bench" / "data" / "foreign_messages.jsonl"


def jsonl_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def english_sets() -> dict[str, tuple[list[str], bool]]:
    """name: (texts, whether it chose the defaults)."""
    with open(DATASETS / "banking77" / "test.csv", newline="", encoding="utf-8") as f:
        banking = [row["text"] for row in csv.DictReader(f)]
    return {"data/test.jsonl": (jsonl_texts(ROOT / "data" / "test.jsonl"), False),
            "banking77 test": (banking, False),
            "clinc150 val": (jsonl_texts(DATASETS / "clinc150" / "val.jsonl"), True),
            "data/train.jsonl": (jsonl_texts(ROOT / "data" / "train.jsonl"), True)}


def cost_ms(texts: list[str], rounds: int = 5) -> dict[str, float]:
    """Per message, one thread, after a warm-up (the model loads once per process)."""
    foreign_language(texts[0], ENGLISH)
    timings = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter()
            foreign_language(text, ENGLISH)
            timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return {"mean": statistics.fmean(timings), "p50": timings[len(timings) // 2],
            "p99": timings[int(len(timings) * 0.99)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "bench" / "results" /
                        f"languages-{date.today().isoformat()}.json", help="Where to write the JSON results.")
    args = parser.parse_args()

    rows = []
    for name, (texts, tuned) in english_sets().items():
        taken = [t for t in texts if foreign_language(t, ENGLISH) is not None]
        rows.append({"set": name, "messages": len(texts), "taken_for_foreign": len(taken),
                     "rate": len(taken) / len(texts), "chose_the_defaults": tuned, "examples": taken[:5]})
    foreign = [json.loads(line) for line in FOREIGN.read_text(encoding="utf-8").splitlines() if line.strip()]
    caught: dict[str, Counter] = defaultdict(Counter)
    for item in foreign:
        found = foreign_language(item["text"], ENGLISH)
        caught[item["language"]]["messages"] += 1
        caught[item["language"]]["caught"] += found is not None
        caught[item["language"]]["right_language"] += found == item["language"]
    all_texts = [t for texts, _ in english_sets().values() for t in texts] + [i["text"] for i in foreign]
    cost = cost_ms(all_texts[:3000])

    print(f"Language detection: py3langid; foreign when P(English) < {FOREIGN_BELOW:g}, at least {MIN_LETTERS} "
          "letters\n")
    print(f"{'English set':<20} {'messages':>8} {'taken for foreign':>18} {'rate':>7}  note")
    for row in rows:
        note = "chose the defaults" if row["chose_the_defaults"] else ""
        print(f"{row['set']:<20} {row['messages']:>8} {row['taken_for_foreign']:>18} {row['rate']:>7.2%}  {note}")
    print(f"\n{'language':<9} {'messages':>8} {'handed over':>12} {'right language':>15}")
    for language, counts in sorted(caught.items()):
        print(f"{language:<9} {counts['messages']:>8} {counts['caught']:>12} {counts['right_language']:>15}")
    total = sum((c for c in caught.values()), Counter())
    print(f"{'all':<9} {total['messages']:>8} {total['caught']:>12} {total['right_language']:>15}")
    print(f"\nCost per message (one thread, {len(all_texts[:3000])} messages × 5): mean {cost['mean']:.3f} ms, "
          f"p50 {cost['p50']:.3f} ms, p99 {cost['p99']:.3f} ms")

    result = {**provenance("languages"), "foreign_below": FOREIGN_BELOW, "min_letters": MIN_LETTERS,
              "english": rows, "foreign": {k: dict(v) for k, v in caught.items()}, "cost_ms": cost}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
