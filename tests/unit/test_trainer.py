"""The GPU path's pieces that a CPU can check: resuming another device's checkpoint, failing without the GPU a
job asked for, bf16 only where the GPU has it, the contrastive loss in fp32, batches sliced from tokens kept
on the device, and each stage's GPU memory peak."""

from __future__ import annotations

import io
import random

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from typer.testing import CliRunner

from distill.losses import SupervisedContrastiveLoss
from distill.pipeline import _Stages
from distill.trainer import TokenizedTexts, TrainOptions, amp_dtype, resolve_device, train


class _Tokenizer:
    """Word lengths as token ids: enough for TokenizedTexts."""

    pad_token_id = 0

    def __call__(self, texts, truncation, max_length):
        return {"input_ids": [[len(word) for word in text.split()][:max_length] for text in texts]}


TEXTS = ["a bb ccc", "dddd", "ee f gg hhh iiii", "j", "kk lll", "mmmm nnnnn o"]


def _saved_on_a_gpu(path) -> None:
    """Rewrite a checkpoint as one saved on cuda:0 (what torch.load needs a GPU or a map_location for)."""
    buffer = io.BytesIO()
    torch.save(torch.load(path, weights_only=False), buffer, _use_new_zipfile_serialization=False)
    path.write_bytes(buffer.getvalue().replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"))


def test_a_checkpoint_saved_on_a_gpu_resumes_on_the_cpu(tmp_path):
    texts, labels = TokenizedTexts(_Tokenizer(), TEXTS, 8), torch.tensor([0, 1, 0, 1, 0, 1])
    model = nn.ModuleDict({"embed": nn.Embedding(8, 4), "head": nn.Linear(4, 2)})

    def step_loss(inputs, index, _progress, _indices):
        pooled = (model["embed"](inputs["input_ids"]) * inputs["attention_mask"][..., None]).sum(1)
        return F.cross_entropy(model["head"](pooled), labels[index])

    def run(epochs: int) -> dict:
        options = TrainOptions(epochs=epochs, batch_size=2, warmup_ratio=0.0, weight_decay=0.0, patience=5, seed=0,
                               checkpoint=tmp_path / "ckpt")
        return train(model, [{"params": list(model.parameters()), "lr": 0.1}], texts, step_loss, lambda: 0.5,
                     options, torch.device("cpu"))

    run(1)
    _saved_on_a_gpu(tmp_path / "ckpt")
    with pytest.raises(RuntimeError, match="CUDA"):  # what resuming without a map_location meets
        torch.load(tmp_path / "ckpt", weights_only=False)
    assert [entry["epoch"] for entry in run(2)["history"]] == [1, 2]  # epoch 1 from the checkpoint


def test_asking_for_cuda_without_a_gpu_fails_loudly(monkeypatch, small_data, tmp_path):
    from distill.cli import app

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="device=cuda, but this process sees no CUDA GPU"):
        resolve_device("cuda")
    done = CliRunner().invoke(app, ["run", "--train", str(small_data[0]), "--registry", str(tmp_path), "--device",
                                    "cuda"])
    assert done.exit_code == 2 and "sees no CUDA GPU" in done.output
    assert not list(tmp_path.iterdir())  # it failed before anything was written


def test_a_gpu_without_native_bf16_trains_in_fp32(monkeypatch):
    gpu = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    with pytest.warns(UserWarning, match="no native bf16"):
        assert amp_dtype(gpu) is None  # emulated bf16 is no use
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert amp_dtype(gpu) == torch.bfloat16 and amp_dtype(torch.device("cpu")) is None


def test_the_contrastive_loss_is_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    embeddings, labels = torch.randn(64, 32), torch.randint(0, 8, (64,))
    loss = SupervisedContrastiveLoss(temperature=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(embeddings, labels)
    assert mixed.dtype == torch.float32
    assert float(mixed) == pytest.approx(float(loss(embeddings, labels)), rel=1e-6)


def test_batches_are_slices_of_tokens_padded_once_and_kept_on_the_device():
    texts = TokenizedTexts(_Tokenizer(), TEXTS, 3)
    batch = texts.batch([3, 0])
    assert batch["input_ids"].tolist() == [[1, 0, 0], [1, 2, 3]]  # cut at max_length and at the batch's longest
    assert batch["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    assert sorted(i for b in texts.bucketed_batches(2, random.Random(0)) for i in b) == list(range(len(TEXTS)))
    on_device = texts.to(torch.device("meta")).batch([3, 0])  # meta stands in for a GPU
    assert {t.device.type for t in on_device.values()} == {"meta"} and on_device["input_ids"].shape == (2, 3)


def test_each_stage_records_its_gpu_memory_peak(monkeypatch):
    resets = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 3 * 2**20)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: resets.append(1))
    stages = _Stages()
    stages.done("teacher", 10)
    stages.done("distil student", 10)
    assert stages.gpu_peak_mib == {"teacher": 3, "distil student": 3} and len(resets) == 2  # per stage


def test_training_moves_the_tokens_to_the_device_once(monkeypatch):
    moved = []
    monkeypatch.setattr(TokenizedTexts, "to", lambda self, device: moved.append(device) or self)
    texts = TokenizedTexts(_Tokenizer(), TEXTS, 8)
    head = nn.Linear(1, 2)
    options = TrainOptions(epochs=2, batch_size=2, warmup_ratio=0.0, weight_decay=0.0, patience=5, seed=0)
    train(head, [{"params": list(head.parameters()), "lr": 0.1}], texts,
          lambda inputs, *_: head(inputs["attention_mask"][:, :1].float()).sum(), lambda: 0.5, options,
          torch.device("cpu"))
    assert moved == [torch.device("cpu")]  # once, not per batch
