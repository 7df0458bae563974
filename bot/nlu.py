"""Intent ranking: the student encoder plus its intent head, with temperature-calibrated confidence.

One forward pass per message gives both the intent ranking and the sentence vector that the
retriever searches with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bot.artifact import Artifact
from bot.encoder import SentenceEncoder


@dataclass(frozen=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True)
class Prediction:
    ranking: list[IntentScore]
    embedding: torch.Tensor

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


class IntentClassifier:
    """Ranks intents for a message; `temperature` rescales logits so confidences are calibrated."""

    def __init__(self, encoder: SentenceEncoder, head: nn.Linear, labels: list[str], temperature: float = 1.0):
        if head.out_features != len(labels):
            raise ValueError(f"head has {head.out_features} outputs but there are {len(labels)} labels")
        self.encoder = encoder.eval()
        self.head = head.eval()
        self.labels = labels
        self.temperature = temperature

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> IntentClassifier:
        encoder = SentenceEncoder.load(artifact.encoder_dir)
        head = load_head(artifact.path / "head.safetensors")
        return cls(encoder, head, artifact.labels(), artifact.calibration().temperature)

    @torch.inference_mode()
    def logits(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        return self.head(self.encoder.encode(texts, batch_size))

    @torch.inference_mode()
    def predict(self, text: str, top_k: int = 5) -> Prediction:
        embedding = self.encoder(**self.encoder.tokenize([text]))
        probs = torch.softmax(self.head(embedding)[0] / self.temperature, dim=-1)
        values, indices = probs.topk(min(top_k, len(self.labels)))
        ranking = [IntentScore(self.labels[i], round(float(v), 4)) for v, i in zip(values, indices)]
        return Prediction(ranking, embedding[0])

    def predict_intent(self, text: str) -> str:
        """Just the best intent's name (what latency benchmarks time)."""
        return self.predict(text, top_k=1).top.name
