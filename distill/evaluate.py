"""Measuring models: accuracy, macro-F1, per-intent report, agreement, size and CPU latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch
from sklearn.metrics import classification_report, f1_score, roc_auc_score


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


def confused(y_true: list[int], y_pred: list[int], labels: list[str]) -> dict[str, dict[str, int]]:
    """The off-diagonal of the confusion matrix: for each intent, how many of its messages went to which other."""
    found: dict[str, dict[str, int]] = {}
    for truth, guess in zip(y_true, y_pred):
        if truth != guess:
            row = found.setdefault(labels[truth], {})
            row[labels[guess]] = row.get(labels[guess], 0) + 1
    return found


def agreement(a: list[str], b: list[str]) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(a)


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def paired_latency(predictors: Mapping[str, Callable[[str], object]], texts: list[str],
                   block: int = 10) -> dict[str, dict]:
    """Milliseconds per single message for each predictor, on the same messages, the predictors taking
    turns every `block` messages: the noise of a shared machine hits all of them alike, while each model
    keeps its weights in the CPU caches for a few messages as it would in a server that runs only it
    (timed message by message in turns, the teacher's 400 MB evict the student's weights every time).
    The first few messages are warm-up."""
    warmup = texts[:5]
    for predict in predictors.values():
        for text in warmup:
            predict(text)
    samples: dict[str, list[float]] = {name: [] for name in predictors}
    for start in range(0, len(texts), block):
        for name, predict in predictors.items():
            for text in texts[start:start + block]:
                began = time.perf_counter()
                predict(text)
                samples[name].append((time.perf_counter() - began) * 1000)
    return {name: _percentiles(values) for name, values in samples.items()}


def _percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
        "mean": round(statistics.fmean(ordered), 3),
        "n": len(ordered),
    }


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
                               bins: int = 15) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins."""
    confidence, predicted = torch.softmax(logits.float() / temperature, dim=-1).max(-1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += float(in_bin.float().mean() * (confidence[in_bin].mean() - correct[in_bin].mean()).abs())
    return error


def retrieval_metrics(retriever, embeddings: torch.Tensor, gold: list[str]) -> dict:
    """Recall@1, recall@5 and MRR of the answer templates: a hit is a template of the message's intent.
    Messages whose intent has no template are left out."""
    answerable = {t.intent for t in retriever.book.templates}
    ranks = []
    for embedding, intent in zip(embeddings, gold):
        if intent not in answerable:
            continue
        hits = retriever.search(embedding, k=len(retriever.book.templates))
        ranks.append(next(i for i, hit in enumerate(hits, start=1) if hit.template.intent == intent))
    if not ranks:
        return {}
    return {"recall_at_1": sum(r <= 1 for r in ranks) / len(ranks),
            "recall_at_5": sum(r <= 5 for r in ranks) / len(ranks),
            "mrr": sum(1 / r for r in ranks) / len(ranks), "queries": len(ranks)}


def throughput(predict_batch: Callable[..., object], texts: list[str], batch_size: int = 32) -> float:
    """Messages per second when a list is classified in batches of `batch_size` (after one warm-up batch)."""
    predict_batch(texts[:batch_size], batch_size=batch_size)
    start = time.perf_counter()
    predict_batch(texts, batch_size=batch_size)
    return round(len(texts) / (time.perf_counter() - start), 1)


def disk_mb(*paths) -> float:
    """Size on disk of files and folders, in MB."""
    from pathlib import Path

    total = 0
    for path in map(Path, paths):
        total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else \
            path.stat().st_size
    return round(total / 1e6, 1)


def oos_metrics(confidences: torch.Tensor, correct: torch.Tensor, is_oos: torch.Tensor, threshold: float) -> dict:
    """Out-of-scope detection at `threshold` on an in-scope score (confidence or energy): in-scope accuracy
    (a rejected in-scope message counts as wrong), out-of-scope recall, and the threshold-free AUROC of
    a low score as the out-of-scope signal."""
    accepted = confidences >= threshold
    in_scope = ~is_oos
    return {
        "threshold": threshold,
        "in_scope_accuracy": float((correct & accepted & in_scope).sum()) / max(int(in_scope.sum()), 1),
        "recall": float((~accepted & is_oos).sum()) / max(int(is_oos.sum()), 1),
        "auroc": float(roc_auc_score(is_oos.numpy(), (-confidences).numpy())),
        "oos_messages": int(is_oos.sum()),
    }
