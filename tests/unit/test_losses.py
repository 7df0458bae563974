"""The distillation losses (distill/losses.py): soft targets, feature losses, contrastive loss, schedules; one
on a tiny random student (seconds)."""

from __future__ import annotations

import pytest
import torch

from bot.model.encoder import SentenceEncoder
from distill.losses import (
    EmbeddingCosineLoss,
    EmbeddingMSELoss,
    SoftTargetKDLoss,
    SupervisedContrastiveLoss,
    linear_schedule,
)
from distill.student import Student


def test_distillation_losses_pull_the_student_to_the_teacher(tiny_student_dir):
    """A few steps of KD + feature loss on a tiny student lower the loss."""
    torch.manual_seed(0)
    student = Student(SentenceEncoder.load(tiny_student_dir), n_labels=3, teacher_dim=8)
    texts = ["where is my order", "cancel it please", "hello there", "refund my money"]
    batch = student.encoder.tokenize(texts)
    labels = torch.tensor([0, 1, 2, 0])
    teacher_logits = torch.nn.functional.one_hot(labels, 3) * 4.0 + torch.randn(4, 3) * 0.5
    teacher_emb = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    kd, mse = SoftTargetKDLoss(temperature=2.0, alpha=0.5), EmbeddingMSELoss()
    optimizer = torch.optim.AdamW(student.parameters(), lr=3e-3)
    losses = []
    student.eval()  # no dropout: the test is about the losses' gradients, not regularisation
    for _ in range(30):
        embedding, logits = student(**batch)
        loss = kd(logits, teacher_logits, labels) + mse(student.projection(embedding), teacher_emb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_kd_loss_is_cross_entropy_when_alpha_is_zero_and_zero_when_matching_with_alpha_one():
    logits, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    assert torch.isclose(SoftTargetKDLoss(alpha=0.0)(logits, logits * 2, labels),
                         torch.nn.functional.cross_entropy(logits, labels))
    assert SoftTargetKDLoss(alpha=1.0)(logits, logits, labels).abs() < 1e-6


def test_kd_loss_targets_for_out_of_scope_and_unlabelled_examples():
    logits = torch.randn(3, 4)
    hard_only = SoftTargetKDLoss(alpha=0.0)
    assert hard_only(logits, logits, torch.tensor([-2, -2, -2])) == 0  # unlabelled: teacher's soft target only
    uniform_ce = -torch.log_softmax(logits, -1).mean(-1).mean()
    assert torch.isclose(hard_only(logits, logits, torch.tensor([-1, -1, -1])), uniform_ce)  # out of scope
    mixed = hard_only(logits, logits, torch.tensor([2, -2, -2]))
    assert torch.isclose(mixed, torch.nn.functional.cross_entropy(logits[:1], torch.tensor([2])))


def test_cosine_feature_loss_ignores_length_and_schedules_move_linearly():
    a = torch.randn(3, 8)
    assert EmbeddingCosineLoss()(a * 5, a).abs() < 1e-6 and EmbeddingMSELoss()(a * 5, a) > 1
    assert EmbeddingCosineLoss()(-a, a) == pytest.approx(2.0)
    assert linear_schedule(2.0, None, 0.7) == 2.0
    assert linear_schedule(4.0, 1.0, 0.0) == 4.0 and linear_schedule(4.0, 1.0, 0.5) == pytest.approx(2.5)
    logits, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    kd = SoftTargetKDLoss(temperature=2.0, alpha=1.0)
    assert torch.isclose(kd(logits, -logits, labels, alpha=0.0), torch.nn.functional.cross_entropy(logits, labels))
    assert not torch.isclose(kd(logits, -logits, labels, temperature=8.0), kd(logits, -logits, labels))


def test_supervised_contrastive_loss_prefers_intents_that_cluster():
    loss = SupervisedContrastiveLoss(temperature=0.1)
    labels = torch.tensor([0, 0, 1, 1, -1])
    centres = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, -1.0]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    assert loss(centres, labels) < loss(mixed, labels)
    assert loss(centres, torch.tensor([-1, -2, -1, -2, -1])) == 0  # nothing to pull together
