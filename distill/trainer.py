"""The training loop shared by teacher fine-tuning and student distillation.

Length-bucketed dynamic padding (batches sliced from token ids padded once and kept on the device), AdamW
with linear warmup and decay, bf16 autocast (on GPUs with native bf16) and fused AdamW on CUDA, no host
synchronisation inside an epoch, optional early stopping on a validation score with the best
weights kept. Under a multi-process launcher every rank trains on its share of each batch (see
distill/distributed.py); only rank 0 evaluates, logs and checkpoints.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from distill.distributed import Ranks, average_gradients, broadcast_parameters, gather_digests, same_on_all_ranks


@dataclass
class TrainOptions:
    epochs: int
    batch_size: int
    warmup_ratio: float
    weight_decay: float
    patience: int | None
    """Stop after this many epochs without a better validation score; None: run every epoch."""
    seed: int
    desc: str = "training"
    log_path: Path | None = None
    """Append one JSON line per evaluation here (the run log)."""
    checkpoint: Path | None = None
    """Save every epoch here; resume from it when it exists."""


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when present. Asking for CUDA where there is none fails here: a job meant for a GPU must
    not quietly train on the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name}, but this process sees no CUDA GPU (torch {torch.__version__}, "
                           f"{'CUDA ' + torch.version.cuda if torch.version.cuda else 'a build without CUDA'}, "
                           f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
                           "use device=auto or cpu to run on the CPU")
    return device


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that compute in it natively (Ampere and later); None (fp32) elsewhere: emulated bf16 is
    slow, and fp16 would need loss scaling."""
    if device.type != "cuda":
        return None
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.bfloat16
    warnings.warn("this GPU has no native bf16: training in fp32", stacklevel=2)
    return None


def autocast(device: torch.device):
    """Autocast to `amp_dtype(device)`; a no-op where that is None."""
    dtype = amp_dtype(device)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


class TokenizedTexts:
    """Texts tokenised and padded once into one tensor (moved to the device once with `to`); `batch` slices
    rows cut to the longest text of that batch, so no batch is built row by row or copied from the host."""

    def __init__(self, tokenizer, texts: list[str], max_length: int):
        ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        self.lengths = [len(row) for row in ids]
        self.input_ids = pad_sequence([torch.tensor(row) for row in ids], batch_first=True,
                                      padding_value=tokenizer.pad_token_id or 0)
        self.attention_mask = pad_sequence([torch.ones(n, dtype=torch.long) for n in self.lengths], batch_first=True)

    def __len__(self) -> int:
        return len(self.lengths)

    def to(self, device: torch.device) -> TokenizedTexts:
        self.input_ids, self.attention_mask = self.input_ids.to(device), self.attention_mask.to(device)
        return self

    def batch(self, indices: list[int], rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The texts at `indices` (`rows`: the same, already a tensor on the tokens' device)."""
        longest = max(self.lengths[i] for i in indices)
        rows = torch.tensor(indices, device=self.input_ids.device) if rows is None else rows
        return {"input_ids": self.input_ids[rows, :longest], "attention_mask": self.attention_mask[rows, :longest]}

    def bucketed_batches(self, batch_size: int, rng: random.Random) -> list[list[int]]:
        """Shuffled batches of texts of similar length (sorted within pools of 50 batches)."""
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        pool = batch_size * 50
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start:start + pool], key=self.lengths.__getitem__)
            batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        return batches

    def ordered_batches(self, batch_size: int) -> Iterator[list[int]]:
        order = sorted(range(len(self.lengths)), key=self.lengths.__getitem__)
        for start in range(0, len(order), batch_size):
            yield order[start:start + batch_size]


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch built on the host, on `device` (not pinned first: pinning each small batch costs more than
    the copy)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class _TrainState(TypedDict):
    """What a checkpoint keeps of the run besides the model, optimizer, scheduler and rng."""

    epoch: int
    best_score: float
    best_state: dict[str, torch.Tensor] | None
    stale: int
    history: list[dict[str, Any]]
    done: bool


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(model: nn.Module, param_groups: list[dict], texts: TokenizedTexts,
          step_loss: Callable[[dict[str, torch.Tensor], torch.Tensor, float, list[int]], torch.Tensor],
          evaluate: Callable[[], float], options: TrainOptions, device: torch.device,
          ranks: Ranks = Ranks()) -> dict:
    """Train `model` on `texts`; `step_loss(inputs, index, progress, indices)` gives a batch's loss (`index`
    on `device` picks that batch's targets, `indices` is the same as a host list; progress in [0, 1) for
    schedules). After each epoch
    `evaluate()` scores the model (on rank 0); the best weights win. With `options.checkpoint`, every epoch is saved
    there and a later call carries on after the last saved epoch. Returns the training history."""
    rng = random.Random(options.seed)
    steps_per_epoch = -(-len(texts) // options.batch_size)
    total_steps = steps_per_epoch * options.epochs
    for group in param_groups:
        group.setdefault("weight_decay", options.weight_decay)
    optimizer = torch.optim.AdamW(param_groups, fused=device.type == "cuda")
    scheduler = get_linear_schedule_with_warmup(optimizer, int(options.warmup_ratio * total_steps), total_steps)
    state: _TrainState = {"epoch": 0, "best_score": float("-inf"), "best_state": None, "stale": 0, "history": [],
                          "done": False}
    if options.checkpoint is not None and options.checkpoint.exists():
        saved = torch.load(options.checkpoint, weights_only=False, map_location="cpu")  # saved on any device
        model.load_state_dict(saved.pop("model"))
        optimizer.load_state_dict(saved.pop("optimizer"))
        scheduler.load_state_dict(saved.pop("scheduler"))
        rng.setstate(saved.pop("rng"))
        state = saved
        tqdm.write(f"{options.desc}: resuming after epoch {state['epoch']}")
    broadcast_parameters(model, ranks)
    parameters = [p for group in param_groups for p in group["params"]]
    texts.to(device)
    step = state["epoch"] * steps_per_epoch
    for epoch in range(state["epoch"] + 1, options.epochs + 1):
        if state["done"]:
            break
        model.train()
        running = torch.zeros((), device=device)
        batches = texts.bucketed_batches(options.batch_size, rng)
        started = time.perf_counter()
        for indices in tqdm(batches, desc=f"{options.desc} epoch {epoch}/{options.epochs}", unit="batch",
                            disable=not ranks.is_main):
            indices = ranks.share(indices)
            index = torch.tensor(indices).to(device, non_blocking=True)
            inputs = texts.batch(indices, index)
            with autocast(device):
                loss = step_loss(inputs, index, step / total_steps, indices)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            average_gradients(parameters, ranks)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.detach()
            step += 1
        epoch_loss = float(running) / len(batches)  # waits for the epoch's last step
        seconds = time.perf_counter() - started
        model.eval()
        score = same_on_all_ranks(evaluate() if ranks.is_main else 0.0, ranks)
        entry = {"epoch": epoch, "loss": epoch_loss, "valid_score": score, "lr": scheduler.get_last_lr()[0],
                 "train_s": round(seconds, 2), "samples_per_s": round(len(texts) / seconds, 1)}
        state["history"].append(entry)
        if ranks.is_main:
            tqdm.write(f"{options.desc} epoch {epoch}: loss {epoch_loss:.4f}, valid {score:.4f}, "
                       f"{entry['samples_per_s']:.0f} samples/s")
        if score >= state["best_score"]:  # a tie goes to the later epoch: trained longer, at a lower learning rate
            state["best_score"], state["stale"] = score, 0
            state["best_state"] = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            state["stale"] += 1
            state["done"] = options.patience is not None and state["stale"] >= options.patience
        state["epoch"] = epoch
        if options.checkpoint is not None and ranks.is_main:
            _save_checkpoint(options.checkpoint, {**state, "model": model.state_dict(),
                                                  "optimizer": optimizer.state_dict(),
                                                  "scheduler": scheduler.state_dict(), "rng": rng.getstate()})
        if options.log_path is not None and ranks.is_main:
            with open(options.log_path, "a") as log:
                log.write(json.dumps({"time": time.time(), "stage": options.desc, **entry}) + "\n")
    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    model.eval()
    summary = {"best_valid_score": state["best_score"], "epochs_run": len(state["history"]),
               "history": state["history"]}
    if ranks.distributed:
        summary["ranks"] = {"world": ranks.world, "weights_digests": gather_digests(model, ranks)}
    return summary


@torch.inference_mode()
def predict_logits(forward: Callable[[dict[str, torch.Tensor]], torch.Tensor], texts: TokenizedTexts,
                   device: torch.device, batch_size: int = 128) -> torch.Tensor:
    """`forward(inputs) -> logits` over all texts, in their original order, on the CPU."""
    out = None
    texts.to(device)
    for indices in texts.ordered_batches(batch_size):
        rows = torch.tensor(indices).to(device, non_blocking=True)
        with autocast(device):
            logits = forward(texts.batch(indices, rows)).float()
        if out is None:
            out = torch.empty(len(texts), logits.shape[-1], device=device)
        out[rows] = logits
    assert out is not None, "predict_logits needs at least one text"
    return out.cpu()
