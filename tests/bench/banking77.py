"""BANKING77 benchmark: the whole pipeline (teacher → distilled student) on ../shared/datasets/banking77,
train → test, printing the teacher/student table and writing the metrics JSON.

    .venv/bin/python tests/bench/banking77.py [--out FILE] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from distill.config import load_config  # noqa: E402
from distill.pipeline import run  # noqa: E402
from distill.run_inputs import RunInputs  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "banking77"


def table(metrics: dict) -> str:
    t, s = metrics["teacher"], metrics["student"]
    rows = [
        ("model", t["model"], f"{s['model']} layers {s['layers_kept']}"),
        ("test accuracy", f"{100 * t['accuracy']:.2f}%", f"{100 * s['accuracy']:.2f}%"),
        ("macro-F1", f"{100 * t['macro_f1']:.2f}%", f"{100 * s['macro_f1']:.2f}%"),
        ("parameters", f"{t['params'] / 1e6:.1f}M", f"{s['params'] / 1e6:.1f}M"),
        ("latency p50 (1 msg, CPU)", f"{t['latency_ms']['p50']:.1f} ms", f"{s['latency_ms']['p50']:.1f} ms"),
        ("latency p99 (1 msg, CPU)", f"{t['latency_ms']['p99']:.1f} ms", f"{s['latency_ms']['p99']:.1f} ms"),
        ("agreement with teacher", "", f"{100 * s['agreement']:.2f}%"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':{width}}  {'teacher':>28}  {'student':>34}"]
    lines += [f"{name:{width}}  {a:>28}  {b:>34}" for name, a, b in rows]
    lines.append(f"retention {100 * metrics['retention']:.2f}%   speedup p50 {metrics['speedup_p50']:.2f}x   "
                 f"stages {metrics['stages_s']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write the metrics JSON here")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "distill.yaml",
                        help="distillation config (default: configs/distill.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="override a config key, e.g. --set epochs=3 (repeatable)")
    parser.add_argument("--registry", type=Path, help="publish here (default: a temporary folder)")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(config, RunInputs([DATASET / "train.csv"], test=DATASET / "test.csv"),
                     args.registry or Path(tmp), force=True)
    metrics = {**result.metrics, "benchmark": "banking77", "wall_s": round(time.perf_counter() - start, 1)}
    print(table(metrics))
    if args.out:
        args.out.write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"metrics written to {args.out}")


if __name__ == "__main__":
    main()
