"""The model card: the artifact's figures written for people (Markdown)."""

from __future__ import annotations

from pathlib import Path

from bot.artifact import write_atomic


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def speed_sentence(metrics: dict) -> str:
    """How much faster the student answers: what distillation buys (teacher and student in the same int8
    runtime) first, then against the teacher as usually run (PyTorch fp32), which adds the runtime's share."""
    how = (f"p50, one message, {metrics['latency_threads']} CPU threads, timed in alternating blocks of 10 "
           "messages in one process")
    usual = f"{metrics['speedup_p50']:.1f}× faster than the teacher in PyTorch fp32"
    if metrics.get("speedup_same_runtime"):
        return (f"The student answers {metrics['speedup_same_runtime']:.1f}× faster than the teacher in the same "
                f"runtime (both int8 ONNX), {usual} ({how}).")
    return f"The student answers {usual} ({how}; the student served as {metrics['student']['backend']})."


def write_model_card(path: Path, metrics: dict, labels: list[str]) -> None:
    teacher, student = metrics["teacher"], metrics["student"]
    rows = [
        ("accuracy", _pct(teacher["accuracy"]), _pct(student["accuracy"])),
        ("macro-F1", _pct(teacher["macro_f1"]), _pct(student["macro_f1"])),
        ("parameters", f"{teacher['params'] / 1e6:.1f}M", f"{student['params'] / 1e6:.1f}M"),
        ("CPU latency p50, one message", f"{teacher['latency_ms']['p50']:.1f} ms",
         f"{student['latency_ms']['p50']:.1f} ms"),
        ("CPU latency p99, one message", f"{teacher['latency_ms']['p99']:.1f} ms",
         f"{student['latency_ms']['p99']:.1f} ms"),
        ("CPU throughput, batches of 32", f"{teacher['throughput_msgs_s']:.0f} msg/s",
         f"{student['throughput_msgs_s']:.0f} msg/s"),
        ("weights on disk", f"{teacher['disk_mb']:.0f} MB", f"{student['disk_mb']:.0f} MB"),
        ("served as", "PyTorch", student.get("backend", "torch")),
        ("calibration error (ECE, after temperature scaling)", f"{teacher['ece']:.4f}", f"{student['ece']:.4f}"),
    ]
    if "retrieval" in student:
        for key, name in (("recall_at_1", "template recall@1"), ("recall_at_5", "template recall@5"),
                          ("mrr", "template MRR")):
            rows.append((name, f"{teacher['retrieval'][key]:.4f}", f"{student['retrieval'][key]:.4f}"))
    if "latency_ms_pytorch" in student:
        rows += [("CPU latency p50, one message, PyTorch student", "",
                  f"{student['latency_ms_pytorch']['p50']:.1f} ms"),
                 ("weights on disk, PyTorch student", "", f"{student['disk_mb_pytorch']:.0f} MB")]
    if "accuracy" in teacher.get("int8", {}):
        rows[3:3] = [("accuracy, both int8 ONNX", _pct(teacher["int8"]["accuracy"]), _pct(student["accuracy"])),
                     ("CPU latency p50, one message, both int8 ONNX", f"{teacher['int8']['latency_ms']['p50']:.1f} ms",
                      f"{student['latency_ms']['p50']:.1f} ms"),
                     ("CPU throughput, batches of 32, both int8 ONNX",
                      f"{teacher['int8']['throughput_msgs_s']:.0f} msg/s", f"{student['throughput_msgs_s']:.0f} msg/s")]
    how = "fine-tuned" if teacher.get("finetuned") else "frozen encoder, trained head"
    lines = [
        "# Model card: distilled intent classifier",
        "",
        f"Teacher `{teacher['model']}` ({how}),"
        f" student from `{student['model']}` keeping layers {student['layers_kept']}.",
        f"{len(labels)} intents; trained on {metrics['train_messages']} messages, validated on "
        f"{metrics['valid_messages']}; measured on {metrics['test_set']['messages']} messages of "
        f"`{metrics['test_set']['file']}`.",
        "",
        "| figure | teacher | student |",
        "| --- | --- | --- |",
        *[f"| {name} | {t} | {s} |" for name, t, s in rows],
        "",
        speed_sentence(metrics),
        f"Student agrees with the teacher on {_pct(student['agreement'])} of messages and keeps "
        f"{_pct(metrics['retention'])} of its accuracy.",
        *([f"Served as {student['backend']}: {student['onnx']['fallback']}."]
          if (student.get("onnx") or {}).get("fallback") else []),
        f"Confidence temperature {student['temperature']:.3f}; out-of-scope threshold {student['oos_threshold']:.3f}.",
        "",
        "## Per-intent report (student)",
        "",
        "| intent | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1-score']:.3f} | {r['support']} |"
          for name, r in student["per_intent"].items()],
        "",
    ]
    write_atomic(path, "\n".join(lines))
