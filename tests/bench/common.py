"""What every benchmark shares: the command line, the run, the teacher/student table and the JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bot.encoder import SentenceEncoder  # noqa: E402
from distill.cache import EmbeddingCache  # noqa: E402
from distill.config import load_config  # noqa: E402
from distill.pipeline import run  # noqa: E402
from distill.run_inputs import RunInputs  # noqa: E402
from distill.weights import fingerprint, resolve_model  # noqa: E402


def split(examples: list, fraction: float, seed: int = 0) -> tuple[list, list]:
    """Stratified: `fraction` of every intent's examples in the first part, the rest in the second."""
    by_intent: dict[str, list] = {}
    for example in examples:
        by_intent.setdefault(example.intent, []).append(example)
    rng, first, second = random.Random(seed), [], []
    for items in by_intent.values():
        rng.shuffle(items)
        cut = round(len(items) * fraction)
        first += items[:cut]
        second += items[cut:]
    return first, second


def provenance(name: str) -> dict:
    """What a committed result file says about how it was made: command, commit, machine, date."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"benchmark": name, "command": shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv]),
            "commit": commit, "date": date.today().isoformat(),
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                        "load_average_at_end": [round(v, 2) for v in os.getloadavg()]}}


class Embedder:
    """A frozen encoder behind the project's on-disk embedding cache; the weights load only when a text is new."""

    def __init__(self, name: str, cache_dir: Path, max_length: int):
        self.name, self.cache_dir, self.max_length = name, cache_dir, max_length
        self.directory = resolve_model(name, cache_dir)
        kind = "teacher" if name == "all-mpnet-base-v2" else "student"  # the teacher's cache is the pipeline's
        self.cache = EmbeddingCache(cache_dir / kind, f"{fingerprint(name, self.directory)}-{max_length}")
        self.encoder: SentenceEncoder | None = None

    def _compute(self, texts: list[str]) -> torch.Tensor:
        self.encoder = self.encoder or SentenceEncoder.load(self.directory, self.max_length)
        return self.encoder.encode(texts, progress=f"{self.name} embeddings")

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return self.cache.get(texts, self._compute)[0] if texts else torch.empty(0)


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def table(metrics: dict) -> str:
    t, s = metrics["teacher"], metrics["student"]
    rows = [
        ("model", t["model"], f"{s['model']} layers {s['layers_kept']}"),
        ("accuracy", _pct(t["accuracy"]), _pct(s["accuracy"])),
        ("macro-F1", _pct(t["macro_f1"]), _pct(s["macro_f1"])),
        ("ECE (after temperature scaling)", f"{t['ece']:.4f}", f"{s['ece']:.4f}"),
        ("parameters", f"{t['params'] / 1e6:.1f}M", f"{s['params'] / 1e6:.1f}M"),
        ("weights on disk", f"{t['disk_mb']:.0f} MB", f"{s['disk_mb']:.0f} MB"),
        ("latency p50 (1 msg, CPU)", f"{t['latency_ms']['p50']:.1f} ms", f"{s['latency_ms']['p50']:.1f} ms"),
        ("latency p99 (1 msg, CPU)", f"{t['latency_ms']['p99']:.1f} ms", f"{s['latency_ms']['p99']:.1f} ms"),
        ("throughput (batched, CPU)", f"{t['throughput_msgs_s']:.0f} msg/s", f"{s['throughput_msgs_s']:.0f} msg/s"),
        ("agreement with teacher", "", _pct(s["agreement"])),
        ("served as", "PyTorch", s.get("backend", "torch")),
    ]
    if "latency_ms_pytorch" in s:
        rows += [
            ("PyTorch student latency p50 / p99", "",
             f"{s['latency_ms_pytorch']['p50']:.1f} / {s['latency_ms_pytorch']['p99']:.1f} ms"),
            ("PyTorch student on disk", "", f"{s['disk_mb_pytorch']:.0f} MB"),
            ("int8 ONNX agreement with PyTorch", "", _pct(s["onnx"]["int8"]["agreement"])),
        ]
    if "oos" in s:
        rows += [
            ("out-of-scope threshold", f"{t['oos']['threshold']:.3f}", f"{s['oos']['threshold']:.3f}"),
            ("in-scope accuracy at threshold", _pct(t["oos"]["in_scope_accuracy"]),
             _pct(s["oos"]["in_scope_accuracy"])),
            ("out-of-scope recall", _pct(t["oos"]["recall"]), _pct(s["oos"]["recall"])),
            ("out-of-scope AUROC", f"{t['oos']['auroc']:.4f}", f"{s['oos']['auroc']:.4f}"),
        ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':{width}}  {'teacher':>28}  {'student':>36}"]
    lines += [f"{name:{width}}  {a:>28}  {b:>36}" for name, a, b in rows]
    smaller = t["disk_mb"] / s["disk_mb"]
    lines.append(f"retention {_pct(metrics['retention'])}   speedup p50 {metrics['speedup_p50']:.2f}x   "
                 f"{smaller:.1f}x smaller on disk   device {metrics['device']}")
    lines.append(f"stages (s) {metrics['stages_s']}")
    lines.append(f"stages (samples/s) {metrics.get('stages_samples_per_s', {})}")
    return "\n".join(lines)


def benchmark(name: str, inputs: RunInputs, description: str) -> None:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
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
        result = run(config, inputs, args.registry or Path(tmp), force=True)
    metrics = {**result.metrics, "benchmark": name, "wall_s": round(time.perf_counter() - start, 1)}
    print(table(metrics))
    if args.out:
        args.out.write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"metrics written to {args.out}")
