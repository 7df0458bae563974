"""Two processes (gloo on the CPU) run one distillation through torchrun and end with identical weights."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from bot.artifact import Registry
from tests.conftest import ROOT, tiny_overrides


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_run_ends_with_identical_weights(tmp_path, small_data, tiny_teacher_dir, tiny_student_dir):
    train, test = small_data
    sets = [arg for item in tiny_overrides(tiny_teacher_dir, tiny_student_dir) + [
        "device=cpu", "teacher_finetune=always", "teacher_epochs=1", "epochs=2"] for arg in ("--set", item)]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
               "-m", "distill", "run", "--train", str(train), "--test", str(test),
               "--registry", str(tmp_path / "reg"), "--cache-dir", str(tmp_path / "cache"), *sets]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert Registry(tmp_path / "reg").versions() == ["v0001"]  # rank 0 alone published
    metrics = json.loads((tmp_path / "reg" / "v0001" / "metrics.json").read_text())
    assert metrics["ranks"] == 2
    for model in ("teacher", "student"):  # the fine-tuned teacher and the student both trained on 2 ranks
        ranks = metrics[model]["training"]["ranks"]
        assert ranks["world"] == 2 and len(ranks["weights_digests"]) == 2
        assert ranks["weights_digests"][0] == ranks["weights_digests"][1]
