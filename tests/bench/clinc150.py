"""CLINC150 benchmark with out-of-scope detection: train on train + oos_train. The test split is not shipped in
../shared/datasets/clinc150, so val + oos_val are cut in two stratified halves (seed 0, every intent and the
out-of-scope messages halved): the choice of the best epoch, temperature, the out-of-scope threshold and the
int8 parity check are tuned on the first half, and every figure is reported on the second, which tuned nothing.

    .venv/bin/python tests/bench/clinc150.py [--out FILE] [--set key=value ...]
"""

import json
import tempfile
from pathlib import Path

from common import DATASETS, RunInputs, benchmark, split

from distill.data import load_examples


def write_jsonl(path: Path, examples: list) -> Path:
    path.write_text("".join(json.dumps({"text": e.text, "intent": e.intent}) + "\n" for e in examples))
    return path


if __name__ == "__main__":
    data = DATASETS / "clinc150"
    validation = [e for name in ("val.jsonl", "oos_val.jsonl") for e in load_examples(data / name)]
    tune, report = split(validation, 0.5, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        inputs = RunInputs([data / "train.jsonl", data / "oos_train.jsonl"],
                           valid=[write_jsonl(Path(folder) / "tune.jsonl", tune)],
                           test=[write_jsonl(Path(folder) / "report.jsonl", report)])
        benchmark("clinc150", inputs, __doc__,
                  tuned_on=f"half of val + oos_val ({len(tune)} messages, stratified by intent, seed 0)",
                  reported_on=f"the other half ({len(report)} messages; tuned nothing)")
