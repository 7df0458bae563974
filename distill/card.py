"""The model card: the artifact's figures written for people (Markdown)."""

from __future__ import annotations

from pathlib import Path

from bot.model.artifact import write_atomic
from bot.model.reports import Metrics


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _millions(count: int | None) -> str:
    return "–" if count is None else f"{count / 1e6:.1f}M"


def speed_sentence(metrics: Metrics) -> str:
    """How much faster the student answers: what distillation buys (teacher and student in the same int8
    runtime) first, then against the teacher as usually run (PyTorch fp32), which adds the runtime's share."""
    how = (f"p50, one message, {metrics.latency_threads} CPU threads, timed in alternating blocks of 10 "
           "messages in one process")
    usual = f"{metrics.speedup_p50:.1f}× faster than the teacher in PyTorch fp32"
    if metrics.speedup_same_runtime:
        return (f"The student answers {metrics.speedup_same_runtime:.1f}× faster than the teacher in the same "
                f"runtime (both int8 ONNX), {usual} ({how}).")
    return f"The student answers {usual} ({how}; the student served as {metrics.student.backend})."


def write_model_card(path: Path, metrics: Metrics, labels: list[str]) -> None:
    teacher, student = metrics.teacher, metrics.student
    rows = [
        ("accuracy", _pct(teacher.accuracy), _pct(student.accuracy)),
        ("macro-F1", _pct(teacher.macro_f1), _pct(student.macro_f1)),
        ("parameters", _millions(teacher.params), _millions(student.params)),
        ("CPU latency p50, one message", f"{teacher.latency_ms.p50:.1f} ms", f"{student.latency_ms.p50:.1f} ms"),
        ("CPU latency p99, one message", f"{teacher.latency_ms.p99:.1f} ms", f"{student.latency_ms.p99:.1f} ms"),
        ("CPU throughput, batches of 32", f"{teacher.throughput_msgs_s:.0f} msg/s",
         f"{student.throughput_msgs_s:.0f} msg/s"),
        ("weights on disk", f"{teacher.disk_mb:.0f} MB", f"{student.disk_mb:.0f} MB"),
        ("served as", "PyTorch", student.backend),
        ("calibration error (ECE, after temperature scaling)", f"{teacher.ece:.4f}", f"{student.ece:.4f}"),
    ]
    if student.retrieval is not None and teacher.retrieval is not None:
        tr, sr = teacher.retrieval, student.retrieval
        rows += [(name, f"{a:.4f}", f"{b:.4f}") for name, a, b in (
            ("template recall@1", tr.recall_at_1, sr.recall_at_1),
            ("template recall@5", tr.recall_at_5, sr.recall_at_5), ("template MRR", tr.mrr, sr.mrr))]
    if student.latency_ms_pytorch is not None:
        rows += [("CPU latency p50, one message, PyTorch student", "", f"{student.latency_ms_pytorch.p50:.1f} ms"),
                 ("weights on disk, PyTorch student", "", f"{student.disk_mb_pytorch:.0f} MB")]
    int8 = teacher.int8
    if int8 is not None and int8.accuracy is not None and int8.latency_ms is not None:
        rows[3:3] = [("accuracy, both int8 ONNX", _pct(int8.accuracy), _pct(student.accuracy)),
                     ("CPU latency p50, one message, both int8 ONNX", f"{int8.latency_ms.p50:.1f} ms",
                      f"{student.latency_ms.p50:.1f} ms"),
                     ("CPU throughput, batches of 32, both int8 ONNX", f"{int8.throughput_msgs_s:.0f} msg/s",
                      f"{student.throughput_msgs_s:.0f} msg/s")]
    how = "fine-tuned" if teacher.finetuned else "frozen encoder, trained head"
    fallback = student.onnx.fallback if student.onnx is not None else None
    lines = [
        "# Model card: distilled intent classifier",
        "",
        f"Teacher `{teacher.model}` ({how}),"
        f" student from `{student.model}` keeping layers {student.layers_kept}.",
        f"{len(labels)} intents; trained on {metrics.train_messages} messages, validated on "
        f"{metrics.valid_messages}; measured on {metrics.test_set.messages} messages of "
        f"`{metrics.test_set.file}`.",
        f"Trained on messages in: {', '.join(metrics.languages) or 'no language recognised'} (ISO 639-1). A visitor "
        "who writes in another language is handed to a person at once.",
        "",
        "| figure | teacher | student |",
        "| --- | --- | --- |",
        *[f"| {name} | {t} | {s} |" for name, t, s in rows],
        "",
        speed_sentence(metrics),
        f"Student agrees with the teacher on {_pct(student.agreement)} of messages and keeps "
        f"{_pct(metrics.retention)} of its accuracy.",
        *([f"Served as {student.backend}: {fallback}."] if fallback else []),
        f"Confidence temperature {student.temperature:.3f}; out-of-scope threshold {student.oos_threshold:.3f}.",
        "",
        "## Per-intent report (student)",
        "",
        "| intent | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {name} | {r.precision:.3f} | {r.recall:.3f} | {r.f1_score:.3f} | {r.support} |"
          for name, r in student.per_intent.items()],
        "",
    ]
    write_atomic(path, "\n".join(lines))
