"""BANKING77 benchmark: the whole pipeline (teacher → distilled student) on ../shared/datasets/banking77,
train → test, printing the teacher/student table and writing the metrics JSON.

    .venv/bin/python tests/bench/banking77.py [--out FILE] [--set key=value ...]
"""

from common import DATASETS, RunInputs, benchmark

if __name__ == "__main__":
    data = DATASETS / "banking77"
    benchmark("banking77", RunInputs([data / "train.csv"], test=[data / "test.csv"]), __doc__)
