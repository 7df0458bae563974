"""Measuring models: accuracy, macro-F1, per-intent report, agreement, size and CPU latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from sklearn.metrics import classification_report, f1_score


def classification_metrics(y_true: list[str], y_pred: list[str]) -> dict:
    """Accuracy and macro-F1 over the intents of the test set, plus the per-intent report."""
    labels = sorted(set(y_true))
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    return {
        "accuracy": sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_intent": {label: {k: round(v, 4) if isinstance(v, float) else v for k, v in report[label].items()}
                       for label in labels},
    }


def agreement(a: list[str], b: list[str]) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(a)


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def paired_latency(predictors: dict[str, Callable[[str], object]], texts: list[str]) -> dict[str, dict]:
    """Milliseconds per single message for each predictor, timed in turns on the same messages, so
    the noise of a shared machine hits all of them alike. The first few are warm-up."""
    warmup = texts[:5]
    for predict in predictors.values():
        for text in warmup:
            predict(text)
    samples = {name: [] for name in predictors}
    for text in texts:
        for name, predict in predictors.items():
            start = time.perf_counter()
            predict(text)
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: _percentiles(values) for name, values in samples.items()}


def _percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
        "mean": round(statistics.fmean(ordered), 3),
        "n": len(ordered),
    }
