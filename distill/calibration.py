"""Turning logits into confidences that mean what they say, and choosing the out-of-scope threshold."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al., 2017): the T that minimises validation NLL of softmax(logits / T)."""
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)
    logits = logits.float().clone()  # a normal tensor even if computed under inference_mode

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def choose_threshold(confidences: torch.Tensor, correct: torch.Tensor, quantile: float) -> float:
    """With no out-of-scope examples: the confidence below which only `quantile` of correct answers fall."""
    right = confidences[correct.bool()]
    if right.numel() == 0:
        return 0.0
    return float(torch.quantile(right.float(), quantile))
