"""Teacher and student scored on the same messages: quality, calibration, out-of-scope detection,
retrieval and speed. Also `distill evaluate`, which scores a published artifact on a labelled file."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from bot.model.artifact import read_json, resolve
from bot.model.nlu import ONNX_FP32, ONNX_INT8, IntentClassifier, scope_scores
from bot.model.reports import (
    EvalSet,
    Evaluation,
    Latency,
    OutOfScope,
    Retrieval,
    SideBySide,
    StudentFigures,
    TeacherFigures,
    TeacherInt8,
)
from distill.calibration import choose_oos_threshold, fit_temperature
from distill.config import DistillConfig
from distill.data import Example, load_examples
from distill.evaluate import (
    agreement,
    classification_metrics,
    count_params,
    expected_calibration_error,
    oos_metrics,
    paired_latency,
    retrieval_metrics,
    throughput,
)
from distill.export import Int8Settings, export_onnx, onnx_classifier, quantize_int8, torch_student
from distill.teacher import Teacher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringInputs:
    """What side-by-side scoring takes from a run: the run computes the teacher's outputs beforehand, so this
    module needs nothing of the pipeline."""

    config: DistillConfig
    labels: list[str]
    teacher: Teacher
    eval_set: list[Example]
    teacher_embeddings: torch.Tensor
    """The teacher's embeddings of the eval set's texts."""
    teacher_logits: torch.Tensor
    """The teacher's logits of the eval set's texts."""
    teacher_valid_logits: torch.Tensor
    """The teacher's logits of the validation texts (its temperature and threshold are fitted on them)."""
    y_valid: torch.Tensor
    """Validation labels (-1: out of scope)."""
    scratch_dir: Path
    """Where the teacher's ONNX files (hundreds of MB) go for a while: beside the registry, not a small /tmp."""
    int8_settings: Int8Settings | None
    """How the served student was quantised, for the teacher to be too (None: not served in int8)."""


def score_side_by_side(run: ScoringInputs, served: IntentClassifier, pytorch: IntentClassifier, retriever,
                       threshold: float) -> SideBySide:
    """`served` is the student as the bot runs it (int8 ONNX when exported), `pytorch` the same weights in
    PyTorch. When the student is served in int8, the teacher is exported and quantised the same way, so
    that speed and accuracy are reported apart for distillation (teacher int8 vs student int8, the same
    runtime) and for the runtime (PyTorch fp32 vs int8 ONNX). Latency is one message at a time on the CPU,
    the models taking turns every 10 messages; throughput is batches of 32."""
    from bot.model.retriever import TemplateRetriever

    config, labels, teacher = run.config, run.labels, run.teacher
    texts = [e.text for e in run.eval_set]
    y_gold = torch.tensor([labels.index(e.intent) if e.intent in labels else -1 for e in run.eval_set])
    in_scope = y_gold >= 0
    gold = [e.intent for e in run.eval_set if e.intent in labels]
    teacher_emb, teacher_logits = run.teacher_embeddings, run.teacher_logits
    teacher_valid_logits, y_valid = run.teacher_valid_logits, run.y_valid
    teacher_temperature = fit_temperature(teacher_valid_logits[y_valid >= 0], y_valid[y_valid >= 0])
    teacher.cpu()
    student_emb, student_logits = map(torch.from_numpy, served.embed_and_score(texts))
    teacher_pred = [labels[i] for i in teacher_logits[in_scope].argmax(-1).tolist()]
    student_pred = [labels[i] for i in student_logits[in_scope].argmax(-1).tolist()]
    teacher_model = IntentClassifier.from_torch(teacher.encoder, teacher.head, labels)

    timed = {"teacher": teacher_model.predict_intent, "student": served.predict_intent}
    teacher_int8, int8_failed, quantisation = None, None, None
    with tempfile.TemporaryDirectory(dir=run.scratch_dir, prefix=".teacher-onnx-") as folder:
        settings = run.int8_settings
        if served.backend == "onnx-int8" and settings is not None:  # the teacher through the student's export
            try:
                fp32 = export_onnx(teacher.encoder, teacher.head, Path(folder) / ONNX_FP32)
                teacher_int8 = onnx_classifier(teacher_model, quantize_int8(fp32, Path(folder) / ONNX_INT8, settings),
                                               "onnx-int8")
                timed["teacher_int8"] = teacher_int8.predict_intent
                quantisation = settings.describe()
            except Exception as exc:  # only a figure: the student is published without it, and the report says why
                int8_failed = f"{type(exc).__name__}: {exc}"
                log.warning("the teacher's int8 export for the same-runtime speed-up failed: %s", int8_failed)
        if served is not pytorch:
            timed["student_pytorch"] = pytorch.predict_intent
        latency = {name: Latency(**figures) for name, figures in
                   paired_latency(timed, texts[:config.latency_messages]).items()}
        sample = texts[:512]
        batched = {name: throughput(model.logits, sample, batch_size=32) for name, model in (
            ("teacher", teacher_model), ("teacher_int8", teacher_int8), ("student", served),
            ("student_pytorch", pytorch if served is not pytorch else None)) if model is not None}
        teacher_figures = TeacherFigures(
            **classification_metrics(gold, teacher_pred), params=count_params(teacher.encoder),
            latency_ms=latency["teacher"], throughput_msgs_s=batched["teacher"], temperature=teacher_temperature,
            ece=expected_calibration_error(teacher_logits[in_scope], y_gold[in_scope], teacher_temperature))
        if teacher_int8 is not None:
            int8_logits = teacher_int8.logits(texts)[in_scope.numpy()]
            teacher_figures.int8 = TeacherInt8(
                accuracy=classification_metrics(gold, [labels[i] for i in int8_logits.argmax(-1)])["accuracy"],
                latency_ms=latency["teacher_int8"], throughput_msgs_s=batched["teacher_int8"],
                quantisation=quantisation)
        elif int8_failed:
            teacher_figures.int8 = TeacherInt8(error=int8_failed)
    student_figures = StudentFigures(
        **classification_metrics(gold, student_pred), params=count_params(torch_student(pytorch)),
        backend=served.backend, latency_ms=latency["student"], throughput_msgs_s=batched["student"],
        agreement=agreement(student_pred, teacher_pred),
        ece=expected_calibration_error(student_logits[in_scope], y_gold[in_scope], served.temperature))
    if "student_pytorch" in latency:
        student_figures.latency_ms_pytorch = latency["student_pytorch"]
        student_figures.throughput_msgs_s_pytorch = batched["student_pytorch"]
        student_figures.accuracy_pytorch = classification_metrics(
            gold, [labels[i] for i in pytorch.logits(texts)[in_scope.numpy()].argmax(-1)])["accuracy"]
    if not in_scope.all():
        teacher_threshold = choose_oos_threshold(teacher_valid_logits, y_valid, teacher_temperature, config)
        for figures, logits, temperature, cut in (
                (teacher_figures, teacher_logits, teacher_temperature, teacher_threshold),
                (student_figures, student_logits, served.temperature, threshold)):
            scores = torch.from_numpy(scope_scores(logits, temperature, config.oos_score))
            figures.oos = OutOfScope(**oos_metrics(scores, logits.argmax(-1) == y_gold, ~in_scope, cut),
                                     score=config.oos_score)
    if retriever is not None:
        teacher_retriever = TemplateRetriever.build(retriever.book, teacher.encoder)
        teacher_figures.retrieval = Retrieval(**retrieval_metrics(teacher_retriever, teacher_emb[in_scope], gold))
        student_figures.retrieval = Retrieval(**retrieval_metrics(retriever, student_emb[in_scope], gold))
    return SideBySide(
        teacher=teacher_figures,
        student=student_figures,
        retention=student_figures.accuracy / teacher_figures.accuracy,
        speedup_p50=latency["teacher"].p50 / latency["student"].p50,
        speedup_same_runtime=(latency["teacher_int8"].p50 / latency["student"].p50
                              if "teacher_int8" in latency else None),
        throughput_batch=32,
        latency_threads=torch.get_num_threads(),
    )


def evaluate_artifact(model_dir: Path, test_file: Path, label_column: str | None = None,
                      latency_messages: int = 200) -> Evaluation:
    """The served student of an artifact (or a registry's current) on a labelled file. Examples labelled
    with the artifact's out-of-scope label are scored against its threshold."""
    artifact = resolve(model_dir)
    served = IntentClassifier.from_artifact(artifact)
    oos_label = read_json(artifact.path / "config.json").get("oos_label", "oos")
    examples = load_examples(test_file, label_column)
    texts = [e.text for e in examples]
    is_oos = torch.tensor([e.intent == oos_label for e in examples])
    gold = [e.intent for e in examples if e.intent != oos_label]
    logits = torch.from_numpy(served.logits(texts))
    predicted = [served.labels[i] for i in logits[~is_oos].argmax(-1).tolist()]
    latency = paired_latency({"student": served.predict_intent}, texts[:latency_messages])["student"]
    student = StudentFigures(**classification_metrics(gold, predicted), backend=served.backend,
                             latency_ms=Latency(**latency))
    if is_oos.any():
        scores = torch.from_numpy(scope_scores(logits, served.temperature, served.oos_score))
        correct = torch.tensor([not oos and served.labels[i] == e.intent
                                for i, e, oos in zip(logits.argmax(-1).tolist(), examples, is_oos.tolist())])
        student.oos = OutOfScope(**oos_metrics(scores, correct, is_oos, artifact.calibration().oos_threshold))
    return Evaluation(
        model_version=artifact.version,
        test_set=EvalSet(file=str(test_file), messages=len(examples),
                         intents_unknown_to_model=sorted({g for g in gold if g not in served.labels})),
        student=student,
    )
