"""Distillation losses, one small class each (in the manner of sentence-transformers' `losses/`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

OUT_OF_SCOPE, UNLABELLED = -1, -2


class SoftTargetKDLoss(nn.Module):
    """Hinton et al.'s knowledge distillation: alpha * T² * KL(teacher_T || student_T) + (1 - alpha) * CE.

    T softens both distributions so the student learns the teacher's ranking of wrong intents too;
    the T² factor keeps the soft term's gradients on the scale of the hard one.
    """

    def __init__(self, temperature: float = 2.0, alpha: float = 0.5):
        super().__init__()
        self.temperature, self.alpha = temperature, alpha

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                temperature: float | None = None, alpha: float | None = None) -> torch.Tensor:
        """`temperature` and `alpha` override the constructor's for this call (for schedules)."""
        t = self.temperature if temperature is None else temperature
        alpha = self.alpha if alpha is None else alpha
        soft = F.kl_div(F.log_softmax(student_logits.float() / t, dim=-1),
                        F.log_softmax(teacher_logits.float() / t, dim=-1),
                        log_target=True, reduction="batchmean") * (t * t)
        log_probs = F.log_softmax(student_logits.float(), dim=-1)
        per_example = torch.where(labels >= 0, -log_probs.gather(1, labels.clamp(min=0)[:, None])[:, 0],
                                  -log_probs.mean(-1))
        has_target = labels != UNLABELLED
        hard = (per_example * has_target).sum() / has_target.sum().clamp(min=1)
        return alpha * soft + (1 - alpha) * hard


class EmbeddingMSELoss(nn.Module):
    """Squared distance between the student's projected sentence vector and the teacher's,
    summed over dimensions and averaged over the batch (so its scale does not shrink with width)."""

    def forward(self, projected: torch.Tensor, teacher_embedding: torch.Tensor) -> torch.Tensor:
        return (projected.float() - teacher_embedding.float()).pow(2).sum(-1).mean()


class EmbeddingCosineLoss(nn.Module):
    """1 − cosine similarity between the student's projected sentence vector and the teacher's: matches
    directions only, which is all a normalised retrieval embedding needs."""

    def forward(self, projected: torch.Tensor, teacher_embedding: torch.Tensor) -> torch.Tensor:
        return (1 - F.cosine_similarity(projected.float(), teacher_embedding.float(), dim=-1)).mean()


def linear_schedule(start: float, end: float | None, progress: float) -> float:
    """`start` when `end` is None (constant); else moves linearly from `start` to `end` as progress goes 0 → 1."""
    return start if end is None else start + (end - start) * progress


class SupervisedContrastiveLoss(nn.Module):
    """Khosla et al.'s supervised contrastive loss on normalised sentence vectors: messages of the same intent
    pull together, all others in the batch push apart. This trains the retrieval embedding (what FAISS
    searches) alongside the classifier. Examples without an intent (label < 0) serve only as negatives."""

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        self.temperature = temperature

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embeddings = F.normalize(embeddings.float(), dim=-1)
        # fp32 even under autocast: divided by a temperature of 0.05, bf16's rounding of the cosine
        # similarities would swamp the differences between them
        with torch.autocast(embeddings.device.type, enabled=False):
            similarity = embeddings @ embeddings.T / self.temperature
        self_mask = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        similarity = similarity.masked_fill(self_mask, float("-inf"))
        log_prob = similarity - similarity.logsumexp(dim=1, keepdim=True)
        positives = (labels[:, None] == labels[None, :]) & ~self_mask & (labels[:, None] >= 0)
        counts = positives.sum(1)
        anchors = counts > 0
        if not anchors.any():
            return embeddings.sum() * 0.0
        per_anchor = -(log_prob.masked_fill(~positives, 0.0).sum(1)[anchors] / counts[anchors])
        return per_anchor.mean()
