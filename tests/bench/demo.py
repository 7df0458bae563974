"""The demo bot's benchmark: `make demo`'s own run (data/train.jsonl, data/templates.yml, the product's defaults)
scored on data/test.jsonl. The choice of the best epoch, calibration and the int8 parity check use the
pipeline's validation split (a stratified tenth of train.jsonl); test.jsonl tuned nothing.

    .venv/bin/python tests/bench/demo.py [--out FILE] [--set key=value ...]
"""

from common import ROOT, RunInputs, benchmark

if __name__ == "__main__":
    data = ROOT / "data"
    benchmark("demo", RunInputs([data / "train.jsonl"], test=[data / "test.jsonl"], templates=data / "templates.yml"),
              __doc__, tuned_on="a stratified 10% of data/train.jsonl (the pipeline's validation split)",
              reported_on="data/test.jsonl (377 messages; tuned nothing)")
