"""Two processes (gloo on the CPU) run one distillation through torchrun and end with identical weights; and
the ranks agree (on gradients, the teacher, the training set, the run folder) or fail instead of hanging."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from bot.model.artifact import Registry
from tests.helpers.constants import ROOT
from tests.helpers.tiny import tiny_overrides


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


def _two_ranks(scenario: str, folder, timeout_s: str = "20") -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run tests/helpers/two_ranks.py's `scenario` on two gloo ranks; each rank's result (empty when it wrote none)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(_free_port()), "-m", "tests.helpers.two_ranks", scenario, str(folder)]
    env = {**os.environ, "DISTILBOT_RANK_TIMEOUT_S": timeout_s}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    results = [json.loads(path.read_text()) if path.exists() else {}
               for path in (folder / "rank0.json", folder / "rank1.json")]
    return done, results


def test_gradients_average_when_a_rank_has_none_for_a_parameter(tmp_path):
    done, results = _two_ranks("gradients", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # b: rank 0's 2 and rank 1's none (0), averaged; c, which no rank used, is left for AdamW to skip
    assert results == [{"a": [2.0] * 3, "b": [1.0] * 2, "c": None}] * 2


def test_every_rank_takes_rank_0s_frozen_teacher_head(tmp_path):
    done, results = _two_ranks("teacher_head", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert results[0]["head"] == results[1]["head"]


def test_every_rank_keeps_the_unlabelled_messages_rank_0_keeps(tmp_path):
    done, results = _two_ranks("unlabelled", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert results[0]["train_texts"] == results[1]["train_texts"] == ["a", "b", "one", "two", "three"]


def test_no_rank_sees_the_checkpoints_rank_0_clears_for_a_fresh_run(tmp_path):
    done, results = _two_ranks("stale_checkpoint", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert results == [{"stale_checkpoint_seen": False}] * 2


def test_a_stuck_rank_0_fails_the_others_after_the_rank_timeout(tmp_path):
    started = time.monotonic()
    done, results = _two_ranks("stalled_rank0", tmp_path, timeout_s="3")
    assert done.returncode != 0 and results == [{}, {}]
    assert "rank 1: gave up waiting for rank 0 (its validation score)" in done.stderr
    assert "DISTILBOT_RANK_TIMEOUT_S" in done.stderr
    assert time.monotonic() - started < 25  # rank 0 sleeps 30 s: rank 1 did not wait for it
