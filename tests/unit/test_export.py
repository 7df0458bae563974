"""ONNX export and the parity check on a tiny random student (seconds). (On the real demo student:
tests/e2e/test_export.py.)"""

from __future__ import annotations

import re

import numpy as np
import torch

from bot.model.artifact import Registry, write_json
from bot.model.encoder import SentenceEncoder
from bot.model.nlu import ONNX_FP32, ONNX_INT8, IntentClassifier
from bot.model.torch_student import save_head
from distill.export import INT8_LADDER, ParityGate, export_checked, percent_pair

TEXTS = ["where is my order", "cancel it please", "hello there", "refund my money", "my parcel is late",
         "can I change the delivery address", "the lamp came broken", "talk to a person", "reset my password",
         "do you ship to Norway"]
LABELS = ["a", "b", "c", "d", "e"]


def _student(directory) -> IntentClassifier:
    encoder = SentenceEncoder.load(directory)
    torch.manual_seed(3)
    return IntentClassifier.from_torch(encoder, torch.nn.Linear(encoder.dim, len(LABELS)), LABELS)


def _tied_student(directory) -> IntentClassifier:
    """Intents "a" and "b" tie exactly on every test text: their weight rows differ only along a direction
    orthogonal to all the texts' embeddings, which quantisation noise does not respect."""
    student = _student(directory)
    embeddings = torch.from_numpy(student.encode(TEXTS))
    direction = torch.randn(embeddings.shape[1])
    direction -= torch.linalg.pinv(embeddings) @ (embeddings @ direction)  # remove the texts' span
    with torch.no_grad():
        head = student.model.student.head
        head.weight.zero_()
        head.weight[1] = 10 * direction / direction.norm()
        head.bias.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0]))
    return student


def test_onnx_export_agrees_with_pytorch_and_is_served_from_the_artifact(tiny_student_dir, tmp_path):
    student = _student(tiny_student_dir)
    staged = Registry(tmp_path / "reg").stage()
    report = export_checked(student, staged, TEXTS, int8=True, gate=ParityGate(0.0))
    assert report["served"] == "onnx-int8" and report["fallback"] is None and len(report["int8_attempts"]) == 1
    assert report["fp32"]["agreement"] == 1.0 and report["fp32"]["max_abs_logit_diff"] < 1e-4
    assert (staged / ONNX_FP32).exists() and (staged / ONNX_INT8).exists()
    assert report["int8"]["disk_mb"] < report["fp32"]["disk_mb"]

    student.model.student.encoder.save(staged / "encoder")
    save_head(student.model.student.head, staged / "head.safetensors")
    write_json(staged / "labels.json", LABELS)
    write_json(staged / "calibration.json", {"temperature": 1.0, "oos_threshold": 0.1, "clarify_margin": 0.1})
    artifact = Registry(tmp_path / "reg").publish(staged)
    served = {backend: IntentClassifier.from_artifact(artifact, backend) for backend in ("torch", "onnx", "onnx-int8")}
    assert IntentClassifier.from_artifact(artifact).backend == "onnx-int8"  # auto: the int8 model when present
    reference = served["torch"].embed_and_score(TEXTS)
    for backend in ("onnx", "onnx-int8"):
        embeddings, logits = served[backend].embed_and_score(TEXTS)
        assert embeddings.shape == reference[0].shape and logits.shape == reference[1].shape
    assert np.allclose(served["onnx"].logits(TEXTS), reference[1], atol=1e-4)
    one = served["onnx"].predict(TEXTS[0])
    assert one.top.name == served["torch"].predict(TEXTS[0]).top.name
    assert np.allclose(one.embedding, reference[0][0], atol=1e-4)


def test_an_int8_model_under_the_gate_is_quantised_more_finely_then_replaced_by_fp32_onnx(tiny_student_dir,
                                                                                         tmp_path):
    """Tied intents that int8 rounding reorders under every quantisation setting: the run still publishes, with
    the fp32 ONNX model served (the one `auto` picks) and the reason in the report, digits enough to compare."""
    student = _tied_student(tiny_student_dir)
    report = export_checked(student, tmp_path, TEXTS, int8=True, gate=ParityGate(0.995))
    assert report["served"] == "onnx" and [a["describe"] for a in report["int8_attempts"]] == [
        s.describe() for s in INT8_LADDER]
    assert re.fullmatch(r"int8 agreement \d+\.\d+% < 99\.50% on 10 validation messages \(\d+ differ\) \(best of 3 "
                        r"quantisation settings\); serving the fp32 ONNX model", report["fallback"])
    assert (tmp_path / ONNX_FP32).exists() and not (tmp_path / ONNX_INT8).exists()
    assert report["fp32"]["agreement"] >= 0.995


def test_figures_in_messages_carry_the_digits_that_tell_them_apart():
    assert percent_pair(0.99496, 0.995) == ("99.496%", "99.500%")
    assert percent_pair(0.9947, 0.995) == ("99.47%", "99.50%")
    assert percent_pair(0.995, 0.995) == ("99.50%", "99.50%")


def test_an_fp32_export_under_the_gate_leaves_pytorch_serving_and_no_onnx_file(tiny_student_dir, tmp_path):
    """A gate no export can meet (logits equal to PyTorch's to 1e-12): PyTorch serves, and the report says why."""
    student = _student(tiny_student_dir)
    report = export_checked(student, tmp_path, TEXTS, int8=True, gate=ParityGate(0.0, max_logit_diff=1e-12))
    assert report["served"] == "torch" and "int8_attempts" not in report
    assert re.fullmatch(r"fp32 ONNX logits differ from PyTorch's by up to \S+ > 1e-12; serving the PyTorch student",
                        report["fallback"])
    assert not list(tmp_path.glob("*.onnx"))
