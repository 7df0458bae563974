"""Intent ranking: the student (encoder + intent head, in PyTorch or as an ONNX graph) with
temperature-calibrated confidence.

One forward pass per message gives both the intent ranking and the sentence vector that the
retriever searches with. An artifact that holds `model.int8.onnx` is served through onnxruntime
(the export check has shown it agrees with PyTorch); otherwise the PyTorch weights are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer

from bot.artifact import Artifact, ArtifactError
from bot.encoder import SentenceEncoder, length_sorted_batches, tokenize

ONNX_FP32, ONNX_INT8 = "model.onnx", "model.int8.onnx"
Backend = Literal["auto", "torch", "onnx-int8", "onnx"]
ScopeScore = Literal["energy", "confidence"]


def scope_scores(logits: torch.Tensor, temperature: float, kind: ScopeScore) -> torch.Tensor:
    """How in-scope each message looks (higher: more): the top calibrated probability, or the negative
    free energy T·logsumexp(logits/T) (Liu et al., 2020), which keeps how strongly the model responds at
    all, not just how one intent compares with the others, and separates out-of-scope messages better
    (CLINC150 validation AUROC 0.984 against 0.966)."""
    logits = logits.float()
    if kind == "energy":
        return temperature * torch.logsumexp(logits / temperature, dim=-1)
    return torch.softmax(logits / temperature, dim=-1).max(-1).values


@dataclass(frozen=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True)
class Prediction:
    ranking: list[IntentScore]
    embedding: torch.Tensor
    scope: float | None = None
    """The out-of-scope score the threshold applies to (see scope_scores); None: the top confidence."""

    @property
    def scope_score(self) -> float:
        return self.top.confidence if self.scope is None else self.scope

    @property
    def top(self) -> IntentScore:
        return self.ranking[0]

    @property
    def margin(self) -> float:
        """How far the best intent is ahead of the second (1.0 when there is only one)."""
        return self.ranking[0].confidence - (self.ranking[1].confidence if len(self.ranking) > 1 else 0.0)


def save_head(head: nn.Linear, path) -> None:
    save_file({"weight": head.weight.detach().cpu().contiguous(),
               "bias": head.bias.detach().cpu().contiguous()}, str(path))


def load_head(path) -> nn.Linear:
    tensors = load_file(str(path))
    n_labels, dim = tensors["weight"].shape
    head = nn.Linear(dim, n_labels)
    head.load_state_dict(tensors)
    return head


class StudentModel(Protocol):
    """Token ids and mask in, (sentence vectors, intent logits) out."""

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ...


class TorchStudent(nn.Module):
    """The student in PyTorch: encoder, then head. Also what the ONNX export traces."""

    def __init__(self, encoder: SentenceEncoder, head: nn.Linear):
        super().__init__()
        self.encoder, self.head = encoder.eval(), head.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.encoder(input_ids, attention_mask)
        return embedding, self.head(embedding)


class OnnxStudent:
    """The exported student run by onnxruntime on the CPU, with as many threads as PyTorch uses, so
    the two compare fairly. `spin`: idle worker threads busy-wait for the next call (lowest latency for
    one caller; a waste of CPU in a server where other threads have work)."""

    def __init__(self, path: Path, threads: int | None = None, spin: bool = True):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:  # a server's other threads need the cores more than the model's idle threads do
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feed = {"input_ids": input_ids.numpy().astype(np.int64),
                "attention_mask": attention_mask.numpy().astype(np.int64)}
        embedding, logits = self.session.run(["embedding", "logits"], feed)
        return torch.from_numpy(embedding), torch.from_numpy(logits)


class IntentClassifier:
    """Ranks intents for a message; `temperature` rescales logits so confidences are calibrated."""

    def __init__(self, model: StudentModel, tokenizer, labels: list[str], temperature: float = 1.0,
                 max_length: int = 64, backend: str = "torch", oos_score: ScopeScore = "confidence"):
        self.model = model
        self.oos_score = oos_score
        self.tokenizer = tokenizer
        self.labels = labels
        self.temperature = temperature
        self.max_length = max_length
        self.backend = backend

    @classmethod
    def from_torch(cls, encoder: SentenceEncoder, head: nn.Linear, labels: list[str], temperature: float = 1.0,
                   oos_score: ScopeScore = "confidence") -> IntentClassifier:
        if head.out_features != len(labels):
            raise ValueError(f"head has {head.out_features} outputs but there are {len(labels)} labels")
        return cls(TorchStudent(encoder, head), encoder.tokenizer, labels, temperature, encoder.max_length,
                   oos_score=oos_score)

    @classmethod
    def from_artifact(cls, artifact: Artifact, backend: Backend = "auto", spin: bool = True) -> IntentClassifier:
        """`auto` serves the int8 ONNX model when the artifact has one, else PyTorch; `spin` as in OnnxStudent."""
        labels, calibration = artifact.labels(), artifact.calibration()
        temperature, oos_score = calibration.temperature, calibration.oos_score
        if backend == "auto":
            backend = "onnx-int8" if (artifact.path / ONNX_INT8).exists() else "torch"
        if backend == "torch":
            encoder = SentenceEncoder.load(artifact.encoder_dir)
            return cls.from_torch(encoder, load_head(artifact.path / "head.safetensors"), labels, temperature,
                                  oos_score)
        onnx_file = artifact.path / (ONNX_INT8 if backend == "onnx-int8" else ONNX_FP32)
        if not onnx_file.exists():
            raise ArtifactError(f"{artifact.path}: no {onnx_file.name}; this artifact was published without it")
        tokenizer = AutoTokenizer.from_pretrained(artifact.encoder_dir)
        max_length = SentenceEncoder.configured_max_length(artifact.encoder_dir)
        return cls(OnnxStudent(onnx_file, spin=spin), tokenizer, labels, temperature, max_length, backend, oos_score)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return tokenize(self.tokenizer, texts, self.max_length)

    @torch.inference_mode()
    def embed_and_score(self, texts: list[str], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """Sentence vectors and intent logits of many texts, batched by length."""
        embeddings, logits = [None] * len(texts), [None] * len(texts)
        for idx in length_sorted_batches(texts, batch_size):
            batch_emb, batch_logits = self.model(**self.tokenize([texts[i] for i in idx]))
            for row, i in enumerate(idx):
                embeddings[i], logits[i] = batch_emb[row], batch_logits[row]
        if not texts:
            return torch.empty(0), torch.empty(0, len(self.labels))
        return torch.stack(embeddings).float(), torch.stack(logits).float()

    def encode(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Sentence vectors (what the template index is built from)."""
        return self.embed_and_score(texts, batch_size)[0]

    def logits(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        return self.embed_and_score(texts, batch_size)[1]

    @torch.inference_mode()
    def predict_many(self, texts: list[str], top_k: int = 5) -> list[Prediction]:
        """Predictions for several messages in one model call (what the serving micro-batcher uses)."""
        embeddings, logits = self.model(**self.tokenize(texts))
        logits = logits.float()
        probs = torch.softmax(logits / self.temperature, dim=-1)
        values, indices = probs.topk(min(top_k, len(self.labels)), dim=-1)
        scopes = scope_scores(logits, self.temperature, self.oos_score).tolist()
        return [Prediction([IntentScore(self.labels[i], round(v, 4)) for v, i in zip(row_v, row_i)],
                           embeddings[n].float(), scopes[n])
                for n, (row_v, row_i) in enumerate(zip(values.tolist(), indices.tolist()))]

    def predict(self, text: str, top_k: int = 5) -> Prediction:
        return self.predict_many([text], top_k)[0]

    def predict_intent(self, text: str) -> str:
        """Just the best intent's name (what latency benchmarks time)."""
        return self.predict(text, top_k=1).top.name
