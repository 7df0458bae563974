"""Intent ranking: the student (encoder + intent head, as an ONNX graph or in PyTorch) with
temperature-calibrated confidence.

One forward pass per message gives both the intent ranking and the sentence vector that the
retriever searches with. An artifact that holds `model.int8.onnx` is served through onnxruntime
(the export check has shown it agrees with PyTorch), in numpy, with no PyTorch installed; otherwise
the PyTorch weights are used (bot.model.torch_student, which needs the `train` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, cast

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from bot.model.artifact import Artifact, ArtifactError
from bot.model.threads import MODEL_THREAD_PREFIX, naming_new_threads
from bot.model.tokens import encode, from_hugging_face, length_sorted_batches, load_tokenizer, saved_max_length

ONNX_FP32, ONNX_INT8 = "model.onnx", "model.int8.onnx"
Backend = Literal["auto", "torch", "onnx-int8", "onnx"]
ScopeScore = Literal["energy", "confidence"]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def scope_scores(logits: npt.ArrayLike, temperature: float, kind: ScopeScore) -> np.ndarray:
    """How in-scope each message looks (higher: more): the top calibrated probability, or the negative
    free energy T·logsumexp(logits/T) (Liu et al., 2020), which keeps how strongly the model responds at
    all, not just how one intent compares with the others, and separates out-of-scope messages better
    (CLINC150 validation AUROC 0.984 against 0.966)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    if kind == "energy":
        top = scaled.max(-1)
        return (temperature * (top + np.log(np.exp(scaled - top[..., None]).sum(-1)))).astype(np.float32)
    return softmax(scaled).max(-1).astype(np.float32)


@dataclass(frozen=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True)
class Prediction:
    ranking: list[IntentScore]
    embedding: np.ndarray
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


class StudentModel(Protocol):
    """Token ids and mask in, (sentence vectors, intent logits) out."""

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...


class OnnxStudent:
    """The exported student run by onnxruntime on the CPU; `threads` None: one per core, as PyTorch
    uses (the export check passes PyTorch's count so the two compare fairly). `spin`: idle worker threads
    busy-wait for the next call (lowest latency for one caller; a waste of CPU in a server where other
    threads have work)."""

    def __init__(self, path: Path, threads: int | None = None, spin: bool = True):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:  # a server's other threads need the cores more than the model's idle threads do
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        with naming_new_threads(MODEL_THREAD_PREFIX + "onnx"):  # the session starts its thread pool
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
        embedding, logits = self.session.run(["embedding", "logits"], feed)
        return embedding, logits


class IntentClassifier:
    """Ranks intents for a message; `temperature` rescales logits so confidences are calibrated."""

    def __init__(self, model: StudentModel, tokenizer: Tokenizer, labels: list[str], temperature: float = 1.0,
                 max_length: int = 64, backend: str = "torch", oos_score: ScopeScore = "confidence"):
        self.model = model
        self.oos_score = oos_score
        self.tokenizer = tokenizer
        self.labels = labels
        self.temperature = temperature
        self.max_length = max_length
        self.backend = backend

    @classmethod
    def from_torch(cls, encoder, head, labels: list[str], temperature: float = 1.0,
                   oos_score: ScopeScore = "confidence") -> IntentClassifier:
        """A SentenceEncoder and an nn.Linear head (training's objects) as a classifier."""
        from bot.model.torch_student import NumpyRunner, TorchStudent

        if head.out_features != len(labels):
            raise ValueError(f"head has {head.out_features} outputs but there are {len(labels)} labels")
        return cls(NumpyRunner(TorchStudent(encoder, head)), from_hugging_face(encoder.tokenizer, encoder.max_length),
                   labels, temperature, encoder.max_length, oos_score=oos_score)

    @classmethod
    def from_artifact(cls, artifact: Artifact, backend: Backend = "auto", spin: bool = True,
                      threads: int = 0) -> IntentClassifier:
        """`auto` serves the most compressed model the run published (int8 ONNX, else fp32 ONNX: the export's
        parity check removes a model that disagrees with PyTorch), else PyTorch; `spin` and `threads` as in
        OnnxStudent (`threads` 0: one per core)."""
        labels, calibration = artifact.labels(), artifact.calibration()
        temperature, oos_score = calibration.temperature, calibration.oos_score
        if backend == "auto":
            onnx_files: tuple[tuple[Backend, str], ...] = (("onnx-int8", ONNX_INT8), ("onnx", ONNX_FP32))
            backend = next((name for name, file in onnx_files if (artifact.path / file).exists()), "torch")
        if backend == "torch":
            try:
                from bot.model.encoder import SentenceEncoder
                from bot.model.torch_student import load_head
            except ImportError as exc:
                raise ArtifactError(f"{artifact.path}: serving it in PyTorch needs PyTorch ({exc}); install the "
                                    "'train' extra, or serve an artifact published with its int8 ONNX model") from None
            encoder = SentenceEncoder.load(artifact.encoder_dir)
            return cls.from_torch(encoder, load_head(artifact.path / "head.safetensors"), labels, temperature,
                                  oos_score)
        onnx_file = artifact.path / (ONNX_INT8 if backend == "onnx-int8" else ONNX_FP32)
        if not onnx_file.exists():
            raise ArtifactError(f"{artifact.path}: no {onnx_file.name}; this artifact was published without it")
        max_length = saved_max_length(artifact.encoder_dir)
        tokenizer = load_tokenizer(artifact.encoder_dir, max_length)
        model = OnnxStudent(onnx_file, threads=threads or None, spin=spin)
        return cls(model, tokenizer, labels, temperature, max_length, backend, oos_score)

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        return encode(self.tokenizer, texts)

    def embed_and_score(self, texts: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Sentence vectors and intent logits of many texts, batched by length."""
        embeddings: list[np.ndarray | None] = [None] * len(texts)
        logits: list[np.ndarray | None] = [None] * len(texts)
        for idx in length_sorted_batches(texts, batch_size):
            batch_emb, batch_logits = self.model(**self.tokenize([texts[i] for i in idx]))
            for row, i in enumerate(idx):
                embeddings[i], logits[i] = batch_emb[row], batch_logits[row]
        if not texts:
            return np.empty((0, 0), np.float32), np.empty((0, len(self.labels)), np.float32)
        filled = cast(list[np.ndarray], embeddings), cast(list[np.ndarray], logits)  # batches cover every index
        return np.stack(filled[0]).astype(np.float32), np.stack(filled[1]).astype(np.float32)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Sentence vectors (what the template index is built from)."""
        return self.embed_and_score(texts, batch_size)[0]

    def logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self.embed_and_score(texts, batch_size)[1]

    def predict_many(self, texts: list[str], top_k: int = 5) -> list[Prediction]:
        """Predictions for several messages in one model call (what the serving micro-batcher uses)."""
        embeddings, logits = self.model(**self.tokenize(texts))
        logits = logits.astype(np.float32)
        probs = softmax(logits / self.temperature)
        indices = np.argsort(-probs, axis=-1, kind="stable")[:, :min(top_k, len(self.labels))]
        scopes = scope_scores(logits, self.temperature, self.oos_score).tolist()
        return [Prediction([IntentScore(self.labels[i], round(float(probs[n, i]), 4)) for i in row],
                           embeddings[n].astype(np.float32), scopes[n])
                for n, row in enumerate(indices.tolist())]

    def predict(self, text: str, top_k: int = 5) -> Prediction:
        return self.predict_many([text], top_k)[0]

    def predict_intent(self, text: str) -> str:
        """Just the best intent's name (what latency benchmarks time)."""
        return self.predict(text, top_k=1).top.name
