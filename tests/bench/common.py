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

from bot.model.encoder import SentenceEncoder  # noqa: E402
from distill.cache import EmbeddingCache  # noqa: E402
from distill.cli import show_progress  # noqa: E402
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
    git = lambda *args: subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    return {"benchmark": name, "command": shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv]),
            "commit": git("rev-parse", "HEAD"), "uncommitted_changes": git("status", "--porcelain").splitlines(),
            "date": date.today().isoformat(),
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


def _ms(latency: dict) -> str:
    return f"{latency['p50']:.1f} / {latency['p99']:.1f} ms"


def table(metrics: dict) -> str:
    """Four models side by side: the teacher and the student, each in PyTorch fp32 and as int8 ONNX (one
    process, one thread count, the models timed in turns), so distillation and quantisation read apart."""
    t, s = metrics["teacher"], metrics["student"]
    t8 = t["int8"] if "accuracy" in t.get("int8", {}) else {}
    pytorch_student = "latency_ms_pytorch" in s
    columns = ["teacher PyTorch", "teacher int8", "student PyTorch", f"student {s['backend']} (served)"]

    def row(name, teacher, teacher_int8, student_pytorch, student):
        return (name, teacher, teacher_int8 if t8 else "", student_pytorch if pytorch_student else "", student)

    rows = [
        row("model", t["model"], "same, int8 ONNX", f"layers {s['layers_kept']}", "same, exported"),
        row("accuracy", _pct(t["accuracy"]), t8 and _pct(t8["accuracy"]),
            pytorch_student and _pct(s["accuracy_pytorch"]), _pct(s["accuracy"])),
        row("macro-F1", _pct(t["macro_f1"]), "", "", _pct(s["macro_f1"])),
        row("ECE (after temperature scaling)", f"{t['ece']:.4f}", "", "", f"{s['ece']:.4f}"),
        row("parameters", f"{t['params'] / 1e6:.1f}M", "", "", f"{s['params'] / 1e6:.1f}M"),
        row("weights on disk", f"{t['disk_mb']:.0f} MB", "", pytorch_student and f"{s['disk_mb_pytorch']:.0f} MB",
            f"{s['disk_mb']:.0f} MB"),
        row("latency p50 / p99 (1 msg)", _ms(t["latency_ms"]), t8 and _ms(t8["latency_ms"]),
            pytorch_student and _ms(s["latency_ms_pytorch"]), _ms(s["latency_ms"])),
        row(f"throughput (batches of {metrics.get('throughput_batch', 32)})", f"{t['throughput_msgs_s']:.0f} msg/s",
            t8 and f"{t8['throughput_msgs_s']:.0f} msg/s",
            pytorch_student and f"{s['throughput_msgs_s_pytorch']:.0f} msg/s", f"{s['throughput_msgs_s']:.0f} msg/s"),
        row("agreement with teacher", "", "", "", _pct(s["agreement"])),
    ]
    if "oos" in s:
        rows += [
            row("out-of-scope threshold", f"{t['oos']['threshold']:.3f}", "", "", f"{s['oos']['threshold']:.3f}"),
            row("in-scope accuracy at threshold", _pct(t["oos"]["in_scope_accuracy"]), "", "",
                _pct(s["oos"]["in_scope_accuracy"])),
            row("out-of-scope recall", _pct(t["oos"]["recall"]), "", "", _pct(s["oos"]["recall"])),
            row("out-of-scope AUROC", f"{t['oos']['auroc']:.4f}", "", "", f"{s['oos']['auroc']:.4f}"),
        ]
    widths = [max(len(str(r[i])) for r in rows + [("",) + tuple(columns)]) for i in range(5)]
    lines = ["  ".join([f"{r[0]:{widths[0]}}", *(f"{str(c):>{w}}" for c, w in zip(r[1:], widths[1:]))])
             for r in [("", *columns), *rows]]
    same = metrics.get("speedup_same_runtime")
    lines.append("speed-up p50, same runtime (teacher int8 / student int8): "
                 + (f"{same:.2f}x" if same else "not measured (student not served in int8)")
                 + f"   against the teacher in PyTorch fp32: {metrics['speedup_p50']:.2f}x")
    if t8:
        lines.append(f"throughput ratio, same runtime: {s['throughput_msgs_s'] / t8['throughput_msgs_s']:.2f}x   "
                     f"against PyTorch fp32: {s['throughput_msgs_s'] / t['throughput_msgs_s']:.2f}x")
    lines.append(f"retention {_pct(metrics['retention'])}   {t['disk_mb'] / s['disk_mb']:.1f}x smaller on disk   "
                 f"{metrics['latency_threads']} threads   device {metrics['device']}")
    lines.append(f"tuned on: {metrics['tuned_on']}")
    lines.append(f"reported on: {metrics['reported_on']}")
    lines.append(f"stages (s) {metrics['stages_s']}")
    lines.append(f"stages (samples/s) {metrics.get('stages_samples_per_s', {})}")
    return "\n".join(lines)


def benchmark(name: str, inputs: RunInputs, description: str, tuned_on: str, reported_on: str) -> None:
    """Run the product's pipeline with the product's defaults (configs/distill.yaml, no override unless given),
    print the table and write the result file with its provenance."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help=f"write the results JSON here (default: "
                                                 f"tests/bench/results/{name}-<date>.json)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "distill.yaml",
                        help="distillation config (default: configs/distill.yaml, what `distill run` uses)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="override a config key, e.g. --set epochs=3 (repeatable; the result is then not the "
                             "product's default)")
    parser.add_argument("--registry", type=Path, help="publish here (default: a temporary folder)")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    show_progress()  # the pipeline's stage lines, as `distill run` shows them
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(config, inputs, args.registry or Path(tmp), force=True)
    metrics = {**provenance(name), **result.metrics.dump(), "overrides": args.overrides, "tuned_on": tuned_on,
               "reported_on": reported_on, "wall_s": round(time.perf_counter() - start, 1)}
    print(table(metrics))
    suffix = "-with-overrides" if args.overrides else ""  # never in place of the defaults' result
    out = args.out or ROOT / "tests" / "bench" / "results" / f"{name}-{date.today().isoformat()}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"results written to {out}")
