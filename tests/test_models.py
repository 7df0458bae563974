"""Encoder, student construction, losses, registry: on tiny random transformers (seconds)."""

from __future__ import annotations

import os

import pytest
import torch

from bot.artifact import ArtifactError, Registry, resolve, write_json
from bot.encoder import SentenceEncoder
from distill.calibration import choose_threshold, fit_temperature, tune_threshold
from distill.evaluate import expected_calibration_error, oos_metrics
from distill.losses import (
    EmbeddingCosineLoss,
    EmbeddingMSELoss,
    SoftTargetKDLoss,
    SupervisedContrastiveLoss,
    linear_schedule,
)
from distill.student import Student, cut_layers, default_layer_map, layers_to_keep


def test_saved_encoder_loads_back_identical(tiny_student_dir, tmp_path):
    encoder = SentenceEncoder.load(tiny_student_dir)
    encoder.save(tmp_path / "copy")
    again = SentenceEncoder.load(tmp_path / "copy")
    texts = ["where is my order", "hello"]
    vectors = encoder.encode(texts)
    assert torch.allclose(vectors, again.encode(texts), atol=1e-6)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert (tmp_path / "copy" / "model.safetensors").exists() and (tmp_path / "copy" / "modules.json").exists()


@pytest.mark.parametrize("total, keep, expected", [(6, 6, [0, 1, 2, 3, 4, 5]), (6, 3, [1, 3, 5]), (6, 2, [2, 5]),
                                                   (6, 1, [5]), (6, [0, 2, 4], [0, 2, 4])])
def test_layer_selection(total, keep, expected):
    assert layers_to_keep(total, keep) == expected


def test_layer_selection_refuses_impossible_requests():
    with pytest.raises(ValueError):
        layers_to_keep(6, 7)
    with pytest.raises(ValueError):
        layers_to_keep(6, [0, 6])


def test_cut_student_still_encodes(tiny_student_dir):
    encoder = SentenceEncoder.load(tiny_student_dir)
    assert cut_layers(encoder, 2) == [1, 3]
    assert len(encoder.transformer.encoder.layer) == 2
    assert encoder.encode(["hi"]).shape == (1, 32)


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


def test_temperature_scaling_softens_overconfident_logits():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (400,))
    logits = torch.randn(400, 4)
    logits[torch.arange(200), labels[:200]] += 2.0  # right half the time, but logits scaled ×5: overconfident
    assert fit_temperature(logits * 5, labels) > 2.0
    confidences = torch.tensor([0.2, 0.5, 0.9, 0.95, 0.99])
    assert choose_threshold(confidences, torch.tensor([0, 1, 1, 1, 1]), 0.0) == pytest.approx(0.5)


def _fake_version(registry: Registry, marker: str):
    staged = registry.stage()
    write_json(staged / "labels.json", [marker])
    return registry.publish(staged, fingerprint=marker)


def test_registry_publishes_versions_and_switches_current_atomically(tmp_path):
    registry = Registry(tmp_path / "reg")
    assert registry.current() is None
    with pytest.raises(ArtifactError, match="neither a model artifact"):
        resolve(tmp_path / "reg")
    first = _fake_version(registry, "a")
    second = _fake_version(registry, "b")
    assert (first.version, second.version) == ("v0001", "v0002")
    assert registry.versions() == ["v0001", "v0002"]
    assert resolve(tmp_path / "reg").labels() == ["b"]
    assert os.readlink(tmp_path / "reg" / "current") == "v0002"
    registry.switch("v0001")
    assert registry.current().version == "v0001" and registry.current().manifest["fingerprint"] == "a"
    assert not [p for p in (tmp_path / "reg").iterdir() if p.name.startswith(".")]  # no staging left over
    with pytest.raises(ArtifactError, match="no version 'v0009'"):
        registry.switch("v0009")


def test_calibration_error_of_a_perfectly_calibrated_and_an_overconfident_model():
    labels = torch.tensor([0, 0, 0, 0])
    right_half = torch.zeros(4, 2)  # 50% sure (class 0 by a hair below), right every time
    assert expected_calibration_error(right_half + torch.tensor([1e-4, 0.0]), labels) == pytest.approx(0.5, abs=1e-3)
    confident_wrong = torch.tensor([[0.0, 9.0]] * 4)
    assert expected_calibration_error(confident_wrong, labels) > 0.99


def test_threshold_tuned_on_out_of_scope_examples_catches_them_within_the_accuracy_budget():
    confidences = torch.tensor([0.95, 0.9, 0.85, 0.6, 0.3, 0.2, 0.25, 0.5])
    correct = torch.tensor([True, True, True, False, False, False, False, False])
    is_oos = torch.tensor([False, False, False, False, True, True, True, True])
    threshold = tune_threshold(confidences, correct, is_oos, max_drop=0.0)
    assert threshold == pytest.approx(0.85)  # the highest cut that keeps all three right answers
    found = oos_metrics(confidences, correct, is_oos, threshold)
    assert found["recall"] == 1.0 and found["in_scope_accuracy"] == 0.75 and found["auroc"] > 0.9


def test_supervised_contrastive_loss_prefers_intents_that_cluster():
    loss = SupervisedContrastiveLoss(temperature=0.1)
    labels = torch.tensor([0, 0, 1, 1, -1])
    centres = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, -1.0]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    assert loss(centres, labels) < loss(mixed, labels)
    assert loss(centres, torch.tensor([-1, -2, -1, -2, -1])) == 0  # nothing to pull together


def test_default_layer_map_spreads_student_layers_over_the_teacher():
    assert default_layer_map(4, 12) == {0: 2, 1: 5, 2: 8, 3: 11}
    assert default_layer_map(6, 12) == {0: 1, 1: 3, 2: 5, 3: 7, 4: 9, 5: 11}
    assert default_layer_map(4, 2) == {0: 0, 1: 0, 2: 1, 3: 1}
