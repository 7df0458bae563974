"""CLINC150 benchmark with out-of-scope detection: train on train + oos_train; early stopping, calibration
and the out-of-scope threshold on val + oos_val, which is also what is reported (the test split is not
shipped in ../shared/datasets/clinc150).

    .venv/bin/python tests/bench/clinc150.py [--out FILE] [--set key=value ...]
"""

from common import DATASETS, RunInputs, benchmark

if __name__ == "__main__":
    data = DATASETS / "clinc150"
    valid = [data / "val.jsonl", data / "oos_val.jsonl"]
    benchmark("clinc150", RunInputs([data / "train.jsonl", data / "oos_train.jsonl"], valid=valid, test=valid),
              __doc__)
