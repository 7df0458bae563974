"""The real demo student's export: served as int8 ONNX within the parity gate, and tokenized exactly as in
training. (The export and its parity check on a tiny random student: tests/unit/test_export.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bot.model.artifact import Registry
from bot.model.nlu import ONNX_INT8, IntentClassifier
from bot.model.served_model import ServedModel
from distill.export import agreement_with
from tests.helpers.constants import DATA


def test_the_real_student_is_served_as_int8_within_the_parity_gate(demo_registry):
    artifact = Registry(demo_registry).current()
    metrics = artifact.metrics()
    teacher, student = metrics.teacher, metrics.student
    assert (artifact.path / ONNX_INT8).exists() and student.backend == "onnx-int8"
    assert student.onnx.int8.agreement >= 0.995 and student.onnx.fp32.agreement >= 0.995
    assert student.disk_mb < student.disk_mb_pytorch / 3  # int8 weights and embeddings
    assert student.onnx.served == "onnx-int8" and student.onnx.int8.messages == 139  # validation
    assert teacher.int8.quantisation == student.onnx.int8.describe  # the same export path
    assert metrics.speedup_same_runtime == pytest.approx(teacher.int8.latency_ms.p50 / student.latency_ms.p50)
    assert 0.9 < teacher.int8.accuracy <= 1 and student.accuracy_pytorch is not None
    card = (artifact.path / "MODEL_CARD.md").read_text()
    assert f"{metrics.speedup_same_runtime:.1f}× faster than the teacher in the same runtime" in card
    served = ServedModel.load(demo_registry)
    assert served.classifier.backend == "onnx-int8"
    one_thread = ServedModel.load(demo_registry, threads=1).classifier.model.session  # DISTILBOT_MODEL_THREADS
    assert one_thread.get_session_options().intra_op_num_threads == 1
    texts = [json.loads(line)["text"] for line in (DATA / "test.jsonl").read_text().splitlines()]
    pytorch = IntentClassifier.from_artifact(artifact, "torch")
    # the gate is on validation messages; on the test set (a few hundred) the served model stays within a point
    assert agreement_with(pytorch.logits(texts), served.classifier.logits(texts)) >= 0.99


def test_serving_tokenizes_exactly_as_transformers_does(demo_registry):
    """The served bot reads tokenizer.json with the `tokenizers` library alone; the ids and masks must be the
    ones training saw through transformers, padding and truncation included."""
    from transformers import AutoTokenizer

    from bot.model.tokens import encode, load_tokenizer, saved_max_length

    encoder_dir = Registry(demo_registry).current().encoder_dir
    max_length = saved_max_length(encoder_dir)
    texts = [json.loads(line)["text"] for line in (DATA / "test.jsonl").read_text().splitlines()]
    texts += ["wo ist meine Bestellung? 🙂", "我的订单在哪里", "a " * 300, "", "ÉTÉ naïve café"]
    ours = encode(load_tokenizer(encoder_dir, max_length), texts)
    theirs = AutoTokenizer.from_pretrained(encoder_dir)(texts, padding=True, truncation=True, max_length=max_length,
                                                        return_tensors="np")
    assert ours["input_ids"].shape[1] == max_length  # the long text was cut
    assert np.array_equal(ours["input_ids"], theirs["input_ids"])
    assert np.array_equal(ours["attention_mask"], theirs["attention_mask"])
