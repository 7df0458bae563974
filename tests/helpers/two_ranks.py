"""What each rank does in tests/e2e/test_distributed.py's two-process checks (gloo on the CPU), launched as
`torchrun --nproc-per-node 2 -m tests.helpers.two_ranks SCENARIO FOLDER`; each rank writes FOLDER/rank<N>.json."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import torch
from torch import distributed as dist
from torch import nn

from distill.config import DistillConfig
from distill.distributed import Ranks, average_gradients, launched_ranks, same_on_all_ranks, weights_digest
from distill.run_inputs import RunInputs, training_key


def gradients(ranks: Ranks, folder: Path) -> dict:
    """Rank 1's share of the batch left `b` without a gradient; no rank's share used `c`."""
    a, b, c = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(4))
    a.grad = torch.full((3,), 1.0 + 2 * ranks.rank)
    if ranks.is_main:
        b.grad = torch.full((2,), 2.0)
    average_gradients([a, b, c], ranks)
    return {"a": a.grad.tolist(), "b": b.grad.tolist(), "c": c.grad}


def teacher_head(ranks: Ranks, folder: Path) -> dict:
    """Each rank fits the frozen teacher's head on different embeddings (as separate processes may)."""
    from distill.teacher import Teacher, fit_head

    class Encoder(nn.Module):
        dim = 8

    torch.manual_seed(ranks.rank)
    teacher = Teacher(Encoder(), 3)
    emb, y = torch.randn(30, 8), torch.arange(30) % 3
    fit_head(teacher, emb, y, emb, y, [1.0], ranks)
    return {"head": weights_digest(teacher.head)}


def _run(ranks: Ranks, folder: Path, **config):
    from distill.pipeline import DistillRun

    return DistillRun(DistillConfig(device="cpu", **config), RunInputs([]), folder / "registry", folder / "cache",
                      "fingerprint", False, ranks)


def unlabelled(ranks: Ranks, folder: Path) -> dict:
    """Rank 1's teacher is less sure of the unlabelled messages than rank 0's."""
    messages = folder / "messages.txt"
    if ranks.is_main:
        messages.write_text("one\ntwo\nthree\n")
    dist.barrier()
    job = _run(ranks, folder, unlabelled_min_confidence=0.9)
    job.inputs.unlabelled = [messages]
    job.train_texts, job.valid_texts, job.test_set, job.labels = ["a", "b"], ["c"], None, ["x", "y"]
    job.y_train, job.t_train_emb, job.t_train_logits = torch.tensor([0, 1]), torch.zeros(2, 4), torch.zeros(2, 2)
    sureness = 10.0 if ranks.is_main else 0.0
    job.teacher_outputs_for = lambda texts: (torch.zeros(len(texts), 4), torch.tensor([[sureness, 0.0]] * len(texts)))
    job.add_unlabelled()
    job.close()
    return {"train_texts": job.train_texts}


def stale_checkpoint(ranks: Ranks, folder: Path) -> dict:
    """A checkpoint of an earlier run is in the run folder; rank 0 is slow to clear it."""
    run_dir = folder / "registry" / ".runs" / training_key(DistillConfig(device="cpu"), RunInputs([]))
    if ranks.is_main:
        run_dir.mkdir(parents=True)
        (run_dir / "student.ckpt").write_text("stale")
        clear = shutil.rmtree

        def slow_clear(*args, **kwargs):
            time.sleep(2)
            clear(*args, **kwargs)

        shutil.rmtree = slow_clear
    dist.barrier()
    job = _run(ranks, folder)
    seen = (job.run_dir / "student.ckpt").exists()
    job.close()
    return {"stale_checkpoint_seen": seen}


def stalled_rank0(ranks: Ranks, folder: Path) -> dict:
    """Rank 0 hangs (a stuck evaluation) while rank 1 waits for its validation score."""
    if ranks.is_main:
        time.sleep(30)
    return {"score": same_on_all_ranks(1.0, ranks)}


if __name__ == "__main__":
    scenario, out = sys.argv[1], Path(sys.argv[2])
    ranks = launched_ranks("cpu")
    result = globals()[scenario](ranks, out)
    (out / f"rank{ranks.rank}.json").write_text(json.dumps(result))
    if scenario != "stalled_rank0":  # leave together: a rank that exits with gloo's threads still running aborts
        dist.barrier()
        dist.destroy_process_group()
