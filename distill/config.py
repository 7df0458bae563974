"""The distillation config. The defaults here are the only ones: a YAML file (configs/distill.yaml, what `make
demo` passes) holds only what differs from them, and every key is overridable from the CLI (`--set key=value`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class DistillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teacher: str = Field("all-mpnet-base-v2", description="Pinned name, local sentence-transformers dir, or hub id.")
    student: str = Field("all-MiniLM-L6-v2", description="Model the student starts from (same forms).")
    student_layers: int | list[int] | None = Field(
        3, description="Keep this many transformer layers (spread evenly), or exactly these layer indices.")
    max_length: int = Field(64, gt=0, description="Tokens per message; longer ones are cut.")
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu' or 'cuda'.")
    seed: int = 13

    teacher_finetune: Literal["auto", "always", "never"] = Field(
        "auto", description="Fine-tune the teacher end to end ('auto': on a GPU only); else frozen encoder + head.")
    teacher_epochs: int = Field(3, ge=1, description="Epochs of end-to-end teacher fine-tuning.")
    teacher_lr: float = 2e-5
    teacher_head_c: list[float] = Field([1.0, 10.0, 100.0],
                                        description="Inverse L2 strengths tried for the logistic-regression "
                                                    "heads (frozen teacher, student warm start); the best on "
                                                    "validation wins.")

    warm_start: bool = Field(True, description="Start the student's head as a logistic regression on its "
                                               "frozen embeddings (and the projection by least squares).")
    freeze_embeddings: bool = Field(True, description="Keep the student's word embeddings fixed: a third "
                                                      "of its weights, little to gain, much optimizer time.")
    epochs: int | None = Field(None, ge=1, description="Epochs of student distillation. None: chosen from the "
                                                       "size of the data, enough for `min_steps` optimizer steps "
                                                       "and at least 8 (a small data set needs more passes).")
    min_steps: int = Field(2250, ge=1, description="With epochs None: the fewest optimizer steps of distillation "
                                                   "(2250 is 8 epochs of BANKING77's 9,000 training messages).")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-4, gt=0, description="Student encoder learning rate (AdamW).")
    head_lr: float = Field(3e-3, gt=0, description="Learning rate of the student's head and projection.")
    weight_decay: float = 0.01
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    patience: int | None = Field(None, ge=1, description="Stop after this many epochs without a better validation "
                                                         "score; None: run every epoch (the learning rate decays to "
                                                         "zero over them). The best epoch's weights are kept.")
    temperature: float = Field(2.0, gt=0, description="Softmax temperature T of the distillation KL.")
    temperature_end: float | None = Field(None, gt=0, description="If set, T moves linearly to this value "
                                                                  "over training; else T stays constant.")
    alpha: float = Field(0.5, ge=0, le=1, description="Distillation ratio: alpha*KL + (1-alpha)*cross-entropy.")
    alpha_end: float | None = Field(None, ge=0, le=1, description="If set, alpha moves linearly to this value.")
    mutual: bool = Field(False, description="Bidirectional (mutual) distillation: the teacher trains too, also "
                                            "learning from the student's soft labels.")
    teacher_alpha: float = Field(0.3, ge=0, le=1, description="Mutual: the teacher's share of KL to the "
                                                              "student (the rest is cross-entropy).")
    feature_weight: float = Field(1.0, ge=0, description="Weight of the sentence-embedding loss to the teacher.")
    retrieval_weight: float = Field(0.0, ge=0, description="Multi-task: weight of the supervised contrastive "
                                                           "loss that trains the retrieval embedding (0: off).")
    retrieval_temperature: float = Field(0.05, gt=0, description="Temperature of that contrastive loss.")
    hidden_weight: float = Field(0.0, ge=0, description="Weight of the hidden-state loss (0: off): each mapped "
                                                        "student layer's mean-pooled output, projected, to its "
                                                        "teacher layer's.")
    layer_map: dict[int, int] | None = Field(None, description="Student layer → teacher layer (0-based, student "
                                                               "layers counted after cutting); None: spread "
                                                               "evenly, last to last.")
    feature_loss: Literal["mse", "cosine"] = Field("mse", description="Sentence-embedding loss: squared "
                                                                      "distance or 1 - cosine.")

    unlabelled_min_confidence: float = Field(0.0, ge=0, le=1.01, description="Use an unlabelled message only when "
                                                                         "the teacher's top probability is at "
                                                                         "least this.")
    valid_fraction: float = Field(0.1, gt=0, lt=1, description="Share of training data held out when no --valid.")
    oos_label: str = Field("oos", description="Examples with this label are out of scope: never an intent; "
                                              "trained towards a flat distribution, used to tune the threshold.")
    oos_threshold: float | None = Field(None, description="Fixed out-of-scope confidence threshold. None: tuned "
                                                          "on validation out-of-scope examples when there are "
                                                          "some, else the oos_quantile of correct answers.")
    oos_score: Literal["energy", "confidence"] = Field(
        "energy", description="What the out-of-scope threshold applies to: the energy T·logsumexp(logits/T) "
                              "or the top calibrated probability.")
    oos_quantile: float = Field(0.02, ge=0, lt=1)
    oos_max_accuracy_drop: float = Field(0.005, ge=0, lt=1, description="When tuning the threshold: the highest "
                                                                       "one that costs at most this much in-scope "
                                                                       "validation accuracy.")
    clarify_margin: float = Field(0.1, ge=0, lt=1, description="Ask to clarify when the top two are this close.")
    intent_min_precision: float = Field(0.9, ge=0, le=1, description="Per-intent thresholds: each intent whose "
                                        "validation predictions are less precise than this gets the confidence "
                                        "from which they are (calibration.json intent_thresholds).")
    intent_min_support: int = Field(20, ge=1, description="Per-intent thresholds only for intents predicted at "
                                                          "least this often on the validation split.")
    intent_threshold_max: float = Field(0.9, ge=0, le=1, description="No per-intent threshold above this.")
    intent_thresholds: dict[str, float] = Field({}, description="Fixed per-intent confidence thresholds; they "
                                                                "replace the computed ones for those intents.")
    onnx: Literal["int8", "fp32", "none"] = Field(
        "int8", description="Export the student to ONNX for CPU serving: 'int8' writes model.onnx and the int8 "
                            "model.int8.onnx (which the bot then serves), 'fp32' only the first (served), 'none' "
                            "neither (the bot serves PyTorch).")
    onnx_min_agreement: float = Field(0.995, ge=0, le=1, description="Parity check: an exported model must give "
                                                                     "the PyTorch student's top intent on at least "
                                                                     "this share of the validation messages. An "
                                                                     "int8 model that does not is quantised again "
                                                                     "with stronger settings, then replaced by the "
                                                                     "fp32 ONNX model; one that still does not "
                                                                     "leaves PyTorch serving. The run publishes "
                                                                     "either way and says which.")
    onnx_max_logit_diff: float | None = Field(None, gt=0, description="Parity check, optional: no logit of an "
                                                                      "exported model may differ from PyTorch's by "
                                                                      "more than this on the validation messages.")
    latency_messages: int = Field(200, ge=10, description="Messages timed one at a time for p50/p99 latency.")


NOT_TRAINING = frozenset({
    "onnx", "onnx_min_agreement", "onnx_max_logit_diff", "latency_messages", "oos_threshold", "oos_score",
    "oos_quantile", "oos_max_accuracy_drop", "clarify_margin", "intent_min_precision", "intent_min_support",
    "intent_threshold_max", "intent_thresholds"})
"""Keys read only after training (export, calibration, evaluation): a resumed run may change them and keeps its
checkpoints. (`device` is not one: on a GPU the teacher is fine-tuned and training runs in bf16.)"""


def load_config(path: Path | None, overrides: Sequence[str] = ()) -> DistillConfig:
    """The file's values (if any), then each `key=value` override (value parsed as YAML)."""
    values: dict[str, Any] = {}
    if path is not None:
        values = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: the config must be a mapping of key: value")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} must look like key=value")
        values[key.strip()] = yaml.safe_load(raw)
    return DistillConfig.model_validate(values)
