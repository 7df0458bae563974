"""Closed-form starts for linear layers on frozen embeddings: a logistic-regression intent head, and a
least-squares projection from one embedding space to another."""

from __future__ import annotations

import torch
from sklearn.linear_model import LogisticRegression
from torch import nn


def fit_logistic_head(head: nn.Linear, train_emb: torch.Tensor, train_y: torch.Tensor, valid_emb: torch.Tensor,
                      valid_y: torch.Tensor, strengths: list[float]) -> dict:
    """Set `head` to the logistic regression (L2 strength chosen on validation) of labels on embeddings.
    Out-of-scope examples (label -1) are left out: they are no class."""
    train_emb, train_y = train_emb[train_y >= 0], train_y[train_y >= 0]
    valid_emb, valid_y = valid_emb[valid_y >= 0], valid_y[valid_y >= 0]
    best: tuple[float, float, LogisticRegression] | None = None
    for c in strengths:
        model = LogisticRegression(C=c, max_iter=3000).fit(train_emb.numpy(), train_y.numpy())
        score = model.score(valid_emb.numpy(), valid_y.numpy())
        if best is None or score > best[0]:
            best = (score, c, model)
    if best is None:
        raise ValueError("no L2 strengths to try (teacher_head_c is empty)")
    score, c, model = best
    with torch.no_grad():
        weight = torch.zeros_like(head.weight)
        bias = torch.full_like(head.bias, -1e4)  # classes absent from training never win
        weight[model.classes_] = torch.as_tensor(model.coef_, dtype=weight.dtype)
        bias[model.classes_] = torch.as_tensor(model.intercept_, dtype=bias.dtype)
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return {"C": c, "valid_accuracy": score}


def fit_projection(projection: nn.Linear, source: torch.Tensor, target: torch.Tensor, ridge: float = 1e-3) -> None:
    """Set `projection` to the ridge least-squares map from `source` vectors to `target` vectors."""
    x = torch.cat([source.double(), torch.ones(len(source), 1, dtype=torch.float64)], dim=1)
    gram = x.T @ x + ridge * torch.eye(x.shape[1], dtype=torch.float64)
    solution = torch.linalg.solve(gram, x.T @ target.double())
    with torch.no_grad():
        projection.weight.copy_(solution[:-1].T.to(projection.weight.dtype))
        projection.bias.copy_(solution[-1].to(projection.bias.dtype))
