"""The typed reports beside a model's weights (bot/model/reports.py): files of older versions still load,
a file read and written again keeps its keys, and the readers (card, compare, dashboard) use them."""

from __future__ import annotations

import json
from copy import deepcopy

import pytest

from bot.desk.stats import model_summary
from bot.model.artifact import FORMAT_VERSION, Artifact, ArtifactError, write_json
from bot.model.reports import Calibration, Evaluation, Metrics, OnnxReport
from distill.card import speed_sentence, write_model_card
from distill.compare import comparison_table, load_metrics

LATENCY = {"p50": 4.0, "p99": 9.0, "mean": 5.0, "n": 10}
PER_INTENT = {"greet": {"precision": 1.0, "recall": 0.5, "f1-score": 0.6667, "support": 2.0}}

FIRST_FORMAT = {  # what the first distill run wrote: no ECE, throughput, backend, ONNX, speed-up in one runtime
    "teacher": {"accuracy": 0.9, "macro_f1": 0.8, "per_intent": PER_INTENT, "params": 1000, "latency_ms": LATENCY,
                "model": "teacher", "training": {"mode": "frozen encoder + logistic-regression head", "C": 1.0,
                                                 "valid_accuracy": 0.9}, "finetuned": False},
    "student": {"accuracy": 0.85, "macro_f1": 0.8, "per_intent": PER_INTENT, "params": 100, "latency_ms": LATENCY,
                "agreement": 0.9, "model": "student", "layers_kept": [0, 1],
                "training": {"best_valid_score": 0.8, "epochs_run": 1,
                             "history": [{"epoch": 1, "loss": 1.5, "valid_score": 0.8, "lr": 0.0001}]},
                "temperature": 1.2, "oos_threshold": 0.3},
    "retention": 0.944, "speedup_p50": 10.0,
    "test_set": {"file": "data/test.jsonl", "messages": 2}, "train_messages": 20, "valid_messages": 2,
    "device": "cpu", "stages_s": {"load data": 0.1},
}


def _latest() -> dict:
    """FIRST_FORMAT with what later versions added: int8 serving, the teacher in int8, retrieval, ranks, stages."""
    metrics = deepcopy(FIRST_FORMAT)
    metrics["teacher"].update(throughput_msgs_s=50.0, temperature=0.9, ece=0.05, retrieval={"recall_at_1": 0.5,
                              "recall_at_5": 1.0, "mrr": 0.75, "queries": 2}, disk_mb=400.0,
                              int8={"accuracy": 0.9, "latency_ms": LATENCY, "throughput_msgs_s": 90.0,
                                    "quantisation": "block 32"}, trained_with_student=False)
    attempt = {"settings": {"block_size": 32, "keep_ffn_output_fp32": False, "int8_activations": True},
               "describe": "block 32", "agreement": 1.0, "max_abs_logit_diff": 0.1, "disk_mb": 17.0, "messages": 2}
    metrics["student"].update(
        backend="onnx-int8", throughput_msgs_s=900.0, ece=0.04, latency_ms_pytorch=LATENCY,
        throughput_msgs_s_pytorch=800.0, accuracy_pytorch=0.85, disk_mb_pytorch=70.0, disk_mb=18.0,
        retrieval={"recall_at_1": 0.5, "recall_at_5": 1.0, "mrr": 0.75, "queries": 2},
        onnx={"fp32": {"agreement": 1.0, "max_abs_logit_diff": 0.0, "disk_mb": 66.0, "messages": 2},
              "gate": {"min_agreement": 0.995, "max_logit_diff": None}, "int8": attempt, "int8_attempts": [attempt],
              "served": "onnx-int8", "fallback": None},
        warm_start={}, layer_map=None)
    metrics.update(speedup_same_runtime=3.0, throughput_batch=32, latency_threads=2, ranks=1,
                   stages_samples_per_s={"teacher": 100.0}, machine={"cpus": 2})  # an unknown key is kept
    return metrics


def test_a_first_format_metrics_file_loads_with_defaults_and_is_written_back_unchanged():
    metrics = Metrics.model_validate(FIRST_FORMAT)
    assert metrics.student.backend == "torch" and metrics.speedup_same_runtime is None
    assert metrics.student.onnx is None and metrics.teacher.int8 is None and metrics.unlabelled is None
    assert metrics.student.training.history[0].loss == 1.5 and metrics.teacher.training.C == 1.0
    assert metrics.student.per_intent["greet"].f1_score == 0.6667
    assert metrics.dump() == FIRST_FORMAT


def test_the_latest_metrics_file_round_trips_through_json():
    written = json.loads(json.dumps(Metrics.model_validate(_latest()).dump()))
    assert written == _latest()
    again = Metrics.model_validate(written)
    assert again.student.onnx.int8.settings.block_size == 32 and again.student.warm_start.C is None
    assert again.model_extra == {"machine": {"cpus": 2}}


def test_a_layer_map_keeps_integer_keys_through_json():
    metrics = _latest()
    metrics["student"]["layer_map"] = {0: 0, 1: 1}
    loaded = Metrics.model_validate(json.loads(json.dumps(metrics)))
    assert loaded.student.layer_map == {0: 0, 1: 1}


def test_an_onnx_report_from_before_the_fallback_ladder_loads():
    old = {"fp32": {"agreement": 1.0, "max_abs_logit_diff": 0.0, "disk_mb": 66.0, "messages": 2, "kept": False},
           "int8": {"agreement": 1.0, "max_abs_logit_diff": 0.2, "disk_mb": 17.0, "messages": 2}}
    report = OnnxReport.model_validate(old)
    assert report.served is None and report.int8.settings is None and report.dump() == old


def test_figures_are_typed():
    broken = _latest()
    broken["student"]["accuracy"] = "high"
    with pytest.raises(ValueError):
        Metrics.model_validate(broken)


def test_calibration_before_energy_and_per_intent_thresholds_uses_confidence():
    calibration = Calibration.model_validate({"temperature": 1.0, "oos_threshold": 0.1, "clarify_margin": 0.1})
    assert calibration.oos_score == "confidence" and calibration.intent_thresholds == {}
    assert calibration.dump() == {"temperature": 1.0, "oos_threshold": 0.1, "clarify_margin": 0.1}


def _artifact(folder, **files) -> Artifact:
    folder.mkdir()
    write_json(folder / "manifest.json", {"format": FORMAT_VERSION, "version": "v0001"})
    for name, content in files.items():
        (folder / f"{name}.json").write_text(content if isinstance(content, str) else json.dumps(content))
    return Artifact(folder)


def test_an_artifact_reads_its_reports_typed(tmp_path):
    calibration = {"temperature": 1.5, "oos_threshold": 4.0, "oos_score": "energy", "clarify_margin": 0.1,
                   "intent_thresholds": {"greet": 0.5}}
    artifact = _artifact(tmp_path / "v1", calibration=calibration, metrics=_latest())
    assert artifact.calibration() == Calibration(**calibration)
    assert artifact.metrics().student.onnx.served == "onnx-int8"
    assert _artifact(tmp_path / "v2").metrics() is None  # published without metrics.json
    with pytest.raises(ArtifactError, match="not a valid metrics.json"):
        _artifact(tmp_path / "v3", metrics={"teacher": {}}).metrics()
    with pytest.raises(ArtifactError, match="not a valid calibration.json"):
        _artifact(tmp_path / "v4", calibration={"temperature": "hot"}).calibration()


def test_the_card_and_the_speed_sentence_read_the_typed_metrics(tmp_path):
    metrics = Metrics.model_validate(_latest())
    assert speed_sentence(metrics).startswith("The student answers 3.0× faster than the teacher in the same runtime")
    write_model_card(tmp_path / "card.md", metrics, ["greet"])
    card = (tmp_path / "card.md").read_text()
    assert "| accuracy, both int8 ONNX | 90.00% | 85.00% |" in card and "| template MRR | 0.7500 | 0.7500 |" in card
    assert "| greet | 1.000 | 0.500 | 0.667 | 2.0 |" in card


def test_compare_reads_metrics_files_and_evaluations(tmp_path):
    first, latest, evaluation = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "e.json"
    first.write_text(json.dumps(FIRST_FORMAT))
    latest.write_text(json.dumps(_latest()))
    evaluation.write_text(json.dumps({"model_version": "v0001", "test_set": {"file": "t.jsonl", "messages": 2},
                                      "student": {"accuracy": 0.5, "macro_f1": 0.5, "per_intent": PER_INTENT,
                                                  "backend": "onnx", "latency_ms": LATENCY}}))
    assert isinstance(load_metrics(first), Metrics) and isinstance(load_metrics(evaluation), Evaluation)
    table = comparison_table(load_metrics(first), load_metrics(latest), "a", "b").splitlines()
    assert any(line.split()[:4] == ["speedup_p50", "10.0000", "10.0000", "+0.0000"] for line in table)
    assert any(line.split()[:3] == ["student.disk_mb", "-", "18.0000"] for line in table)


def test_the_dashboard_summary_reads_the_typed_metrics():
    summary = model_summary("v0001", "onnx-int8", Metrics.model_validate(_latest()))
    assert summary["student"] == {"model": "student", "accuracy": 0.85, "params": 100, "disk_mb": 18.0,
                                  "latency_ms_p50": 4.0}
    assert summary["speedup_same_runtime"] == 3.0 and summary["test_messages"] == 2
    empty = model_summary("v0001", "torch", None)
    assert empty["teacher"]["accuracy"] is None and empty["speedup_p50"] is None
