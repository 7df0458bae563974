"""Distillation losses, one small class each (in the manner of sentence-transformers' `losses/`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SoftTargetKDLoss(nn.Module):
    """Hinton et al.'s knowledge distillation: alpha * T² * KL(teacher_T || student_T) + (1 - alpha) * CE.

    T softens both distributions so the student learns the teacher's ranking of wrong intents too;
    the T² factor keeps the soft term's gradients on the scale of the hard one.
    """

    def __init__(self, temperature: float = 2.0, alpha: float = 0.5):
        super().__init__()
        self.temperature, self.alpha = temperature, alpha

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        soft = F.kl_div(F.log_softmax(student_logits.float() / t, dim=-1),
                        F.log_softmax(teacher_logits.float() / t, dim=-1),
                        log_target=True, reduction="batchmean") * (t * t)
        hard = F.cross_entropy(student_logits.float(), labels)
        return self.alpha * soft + (1 - self.alpha) * hard


class EmbeddingMSELoss(nn.Module):
    """Squared distance between the student's projected sentence vector and the teacher's,
    summed over dimensions and averaged over the batch (so its scale does not shrink with width)."""

    def forward(self, projected: torch.Tensor, teacher_embedding: torch.Tensor) -> torch.Tensor:
        return (projected.float() - teacher_embedding.float()).pow(2).sum(-1).mean()
