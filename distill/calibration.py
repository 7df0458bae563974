"""Turning logits into confidences that mean what they say, and choosing the out-of-scope threshold."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from bot.model.nlu import scope_scores
from distill.config import DistillConfig


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


def tune_threshold(confidences: torch.Tensor, correct: torch.Tensor, is_oos: torch.Tensor, max_drop: float) -> float:
    """With out-of-scope validation examples: the highest threshold (most out-of-scope caught) whose
    in-scope accuracy, counting rejected in-scope messages as wrong, is within `max_drop` of no threshold."""
    in_scope = ~is_oos
    n_in = max(int(in_scope.sum()), 1)
    floor = float((correct & in_scope).sum()) / n_in - max_drop
    best = 0.0
    for threshold in sorted(set(confidences.tolist())):
        accepted = confidences >= threshold
        if float((correct & in_scope & accepted).sum()) / n_in >= floor:
            best = threshold
    return best


def intent_thresholds(confidences: torch.Tensor, predicted: torch.Tensor, correct: torch.Tensor,
                      labels: list[str], min_precision: float, min_support: int = 20,
                      ceiling: float = 0.9) -> dict[str, float]:
    """Per intent, the lowest confidence from which the student's predictions of that intent are right at
    least `min_precision` of the time on validation data. Intents already that precise, or predicted fewer
    than `min_support` times (too few to tell), get no entry; an intent never that precise gets its most
    precise cut. No threshold exceeds `ceiling`, so no intent becomes unreachable."""
    thresholds = {}
    for index, name in enumerate(labels):
        mine = predicted == index
        if int(mine.sum()) < min_support or float(correct[mine].float().mean()) >= min_precision:
            continue
        best_cut, best_precision = 0.0, -1.0
        for cut in sorted(set(confidences[mine].tolist())):
            kept = mine & (confidences >= cut)
            precision = float(correct[kept].float().mean())
            if precision >= min_precision:
                best_cut = cut
                break
            if precision > best_precision:
                best_cut, best_precision = cut, precision
        thresholds[name] = round(min(best_cut, ceiling), 6)
    return thresholds


def choose_oos_threshold(logits: torch.Tensor, labels: torch.Tensor, temperature: float,
                         config: DistillConfig) -> float:
    """The out-of-scope threshold on the configured score: fixed, tuned on out-of-scope validation
    examples, or a low quantile of the correct answers' scores."""
    scores = torch.from_numpy(scope_scores(logits, temperature, config.oos_score))
    correct, is_oos = logits.argmax(-1) == labels, labels < 0
    if config.oos_threshold is not None:
        return config.oos_threshold
    if is_oos.any():
        return tune_threshold(scores, correct, is_oos, config.oos_max_accuracy_drop)
    return choose_threshold(scores, correct, config.oos_quantile)
