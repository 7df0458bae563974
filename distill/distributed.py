"""Several processes, one training run: started by `accelerate launch` or `torchrun`, each rank takes
its share of every batch and the gradients are averaged, so all ranks hold the same weights.

One process (the usual case) needs no process group and none of this does anything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

import torch
from torch import distributed as dist
from torch import nn

TIMEOUT_ENV = "DISTILBOT_RANK_TIMEOUT_S"


def rank_timeout() -> timedelta:
    """How long a rank waits in a collective (the others wait there while rank 0 evaluates) before it gives
    up: a dead or stuck rank then fails the run instead of hanging it. $DISTILBOT_RANK_TIMEOUT_S, 600 s."""
    return timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "600")))


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    device: torch.device | None = None
    """The device a launcher assigned this rank (cuda:LOCAL_RANK), if any."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, indices: list[int]) -> list[int]:
        """This rank's part of a global batch (never empty: a batch smaller than the world is reused)."""
        if not self.distributed:
            return indices
        return indices[self.rank::self.world] or indices[self.rank % len(indices):][:1]


def launched_ranks(device: str = "auto") -> Ranks:
    """The ranks a launcher set up (WORLD_SIZE > 1 in the environment), with the process group joined
    through accelerate (NCCL on GPUs, gloo on CPUs), its collectives bounded by `rank_timeout()`; a single
    process otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Ranks()
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available(), timeout=rank_timeout())
    return Ranks(state.process_index, state.num_processes, state.device)


@contextmanager
def _waiting_for_rank0(ranks: Ranks, what: str) -> Iterator[None]:
    """Turn a collective's timeout or lost peer into an error that says what this rank was waiting for."""
    try:
        yield
    except RuntimeError as exc:  # gloo and NCCL raise RuntimeError subclasses
        raise RuntimeError(f"rank {ranks.rank}: gave up waiting for rank 0 ({what}) after at most "
                           f"{rank_timeout().total_seconds():.0f} s (${TIMEOUT_ENV}): it died or is stuck. "
                           f"{exc}") from exc


def broadcast_parameters(model: nn.Module, ranks: Ranks) -> None:
    """Start every rank from rank 0's weights."""
    if ranks.distributed:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def average_gradients(parameters: list[nn.Parameter], ranks: Ranks) -> None:
    """All-reduce the gradients as one flat buffer (one collective per step), then divide by the number of
    ranks. Every parameter takes part, zeros where this rank's share left its gradient None, so the buffers
    line up on all ranks; a flag per parameter rides along, and one no rank used keeps a None gradient (as in
    one process: AdamW skips it rather than decaying it). Reading the flags is the step's one host sync."""
    if not ranks.distributed:
        return
    device = parameters[0].device
    used = torch.tensor([p.grad is not None for p in parameters], dtype=parameters[0].dtype, device=device)
    flat = torch.cat([*((torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in parameters), used])
    dist.all_reduce(flat)
    used_anywhere = (flat[-len(parameters):] > 0).tolist()
    flat = flat[:-len(parameters)] / ranks.world
    offset = 0
    for p, anywhere in zip(parameters, used_anywhere):
        p.grad = flat[offset:offset + p.numel()].view_as(p) if anywhere else None
        offset += p.numel()


def same_on_all_ranks(value, ranks: Ranks, what: str = "its validation score"):
    """Rank 0's value (a validation score, a mask, a state dict: anything picklable), so every rank takes the
    same decisions as rank 0."""
    if not ranks.distributed:
        return value
    holder = [value]
    with _waiting_for_rank0(ranks, what):
        dist.broadcast_object_list(holder, src=0)
    return holder[0]


def weights_digest(model: nn.Module) -> str:
    """A hash of every weight: equal digests on all ranks show they ended with identical models."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def gather_digests(model: nn.Module, ranks: Ranks) -> list[str]:
    """Every rank's weights digest, in rank order; raises when the ranks have diverged."""
    digest = weights_digest(model)
    if not ranks.distributed:
        return [digest]
    digests: list[str | None] = [None] * ranks.world
    dist.all_gather_object(digests, digest)
    if len(set(digests)) > 1:
        raise RuntimeError(f"the ranks ended with different weights: {digests}")
    return cast(list[str], digests)  # all_gather_object filled every rank's slot


def barrier(ranks: Ranks, what: str = "a barrier") -> None:
    if ranks.distributed:
        with _waiting_for_rank0(ranks, what):
            dist.barrier()
