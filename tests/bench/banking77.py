"""BANKING77 benchmark: the whole pipeline (teacher → distilled student) on ../shared/datasets/banking77 with the
product's defaults: the choice of the best epoch, calibration and the int8 parity check on a stratified tenth of
train (the pipeline's own validation split), the figures on test.csv, which tuned nothing.

    .venv/bin/python tests/bench/banking77.py [--out FILE] [--set key=value ...]
"""

from common import DATASETS, RunInputs, benchmark

if __name__ == "__main__":
    data = DATASETS / "banking77"
    benchmark("banking77", RunInputs([data / "train.csv"], test=[data / "test.csv"]), __doc__,
              tuned_on="a stratified 10% of train.csv (the pipeline's validation split)",
              reported_on="test.csv (3,080 messages; tuned nothing)")
