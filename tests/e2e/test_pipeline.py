"""The whole distillation run on tiny random models: stages, artifact, metrics, caching, the CLI in its own
processes, killing and resuming. (Minutes on two cores: e2e. What keys a run: tests/unit/test_run_inputs.py.)"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from bot.model.artifact import Registry
from bot.model.nlu import IntentClassifier
from bot.model.served_model import ServedModel
from distill.config import load_config
from distill.pipeline import run
from distill.run_inputs import RunInputs
from tests.helpers.constants import DATA, ROOT
from tests.helpers.tiny import tiny_overrides

METRIC_KEYS = ["accuracy", "macro_f1", "params", "latency_ms", "per_intent", "ece", "throughput_msgs_s", "disk_mb",
               "retrieval"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, small_data, tiny_teacher_dir, tiny_student_dir):
    train, test = small_data
    cache = tmp_path_factory.mktemp("cache")
    config = load_config(None, tiny_overrides(tiny_teacher_dir, tiny_student_dir))
    registry = tmp_path_factory.mktemp("registry")
    inputs = RunInputs([train], test=[test], templates=DATA / "templates.yml")
    result = run(config, inputs, registry, cache)
    return config, inputs, registry, cache, result


def test_run_publishes_a_complete_artifact(tiny_run):
    _, _, registry, _, result = tiny_run
    assert Registry(registry).current().version == "v0001"
    for name in ["encoder/model.safetensors", "head.safetensors", "labels.json", "calibration.json",
                 "templates.json", "templates.faiss", "metrics.json", "MODEL_CARD.md", "config.json"]:
        assert (result.artifact / name).exists(), name
    metrics = json.loads((result.artifact / "metrics.json").read_text())
    for model in ("teacher", "student"):
        for key in METRIC_KEYS:
            assert key in metrics[model]
        assert set(metrics[model]["latency_ms"]) >= {"p50", "p99"}
        retrieval = metrics[model]["retrieval"]
        assert 0 <= retrieval["recall_at_1"] <= retrieval["recall_at_5"] <= 1 and retrieval["queries"] == 58
        assert 0 <= metrics[model]["ece"] <= 1 and metrics[model]["throughput_msgs_s"] > 0
    assert 0 <= metrics["student"]["agreement"] <= 1
    assert metrics["retention"] == pytest.approx(metrics["student"]["accuracy"] / metrics["teacher"]["accuracy"])
    assert metrics["speedup_p50"] > 0 and metrics["student"]["layers_kept"] == [0, 1, 2, 3]
    assert "| accuracy |" in (result.artifact / "MODEL_CARD.md").read_text()
    log = [json.loads(line) for line in (result.artifact / "run_log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == list(range(1, metrics["student"]["training"]["epochs_run"] + 1))
    assert all(entry["stage"] == "student" and "valid_score" in entry and "lr" in entry for entry in log)
    served = ServedModel.load(registry)
    assert len(served.classifier.labels) == 29 and served.retriever.index.ntotal > 29


def test_an_unchanged_run_is_skipped_and_force_redoes_it(tiny_run, tiny_teacher_dir, tiny_student_dir):
    config, inputs, registry, cache, _ = tiny_run
    again = run(config, inputs, registry, cache)
    assert again.up_to_date and Registry(registry).versions() == ["v0001"]
    sets = [arg for item in tiny_overrides(tiny_teacher_dir, tiny_student_dir) for arg in ("--set", item)]
    cli = _cli("run", "--train", str(inputs.train[0]), "--test", str(inputs.test[0]), "--templates",
               str(inputs.templates), "--registry", str(registry), *sets)
    assert cli.returncode == 0 and "v0001 was distilled from this exact data and config" in cli.stdout
    cached = list((cache / "teacher").glob("embeddings-*.pt"))
    assert len(cached) == 1
    stored = torch.load(cached[0], weights_only=True)
    assert "texts" not in stored and len(stored["digests"][0]) == 64  # digests, never the (visitors') texts
    other = config.model_copy(update={"student_layers": 2, "feature_loss": "cosine", "temperature_end": 1.0,
                                      "alpha_end": 0.9})
    forced = run(other, inputs, registry, cache)
    assert not forced.up_to_date and forced.metrics.student.layers_kept == [1, 3]
    assert Registry(registry).versions() == ["v0001", "v0002"]
    compared = _cli("compare", str(registry / "v0001"), str(registry))
    assert compared.returncode == 0
    row = next(line for line in compared.stdout.splitlines() if line.startswith("student.params"))
    assert row.split()[1] != row.split()[2]  # 4 layers (all of the tiny student's) against 2


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distill", *args], capture_output=True, text=True, cwd=ROOT)


def test_evaluate_cli_measures_a_registry(tiny_run, small_data, tmp_path):
    _, _, registry, _, _ = tiny_run
    out = tmp_path / "m.json"
    done = _cli("evaluate", "--model", str(registry), "--test", str(small_data[1]), "--out", str(out),
                "--latency-messages", "10")
    assert done.returncode == 0, done.stderr
    metrics = json.loads(out.read_text())
    assert metrics["test_set"]["messages"] == 58 and "accuracy" in metrics["student"]


def test_cli_reports_bad_data_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "intent": "greeting"}\n{"text": " ", "intent": "greeting"}\n')
    done = _cli("run", "--train", str(bad), "--registry", str(tmp_path / "reg"))
    assert done.returncode == 2
    assert f"error: {bad}:2: empty 'text'" in done.stderr
    assert not (tmp_path / "reg").exists() or not Registry(tmp_path / "reg").versions()
    good = tmp_path / "good.csv"
    good.write_text("text,intent\nhello,greeting\n")
    done = _cli("run", "--train", str(good), "--train", str(bad), "--registry", str(tmp_path / "reg"))
    assert done.returncode == 2 and f"{bad}:2: empty 'text'" in done.stderr  # every --train file is read


def test_every_cli_option_is_explained():
    for command in (["run"], ["evaluate"]):
        done = _cli(*command, "--help")
        assert done.returncode == 0 and "--registry" in done.stdout or "--model" in done.stdout
    done = subprocess.run([sys.executable, "-m", "bot", "serve", "--help"], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0 and "--registry" in done.stdout and "--db" in done.stdout


OUT_OF_SCOPE = ["what's the weather like in Lisbon tomorrow", "tell me a joke about penguins",
                "who won the football match last night", "how many calories are in a banana",
                "set an alarm for seven am", "what is the capital of Canada", "play some jazz music",
                "translate good night into Italian", "how tall is Mount Everest", "remind me to call mum"]


def test_out_of_scope_examples_tune_the_threshold_and_are_scored(tmp_path, small_data, tiny_teacher_dir,
                                                                  tiny_student_dir):
    train, test = small_data
    oos_lines = [json.dumps({"text": t, "intent": "oos"}) for t in OUT_OF_SCOPE]
    train_oos, test_oos = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train_oos.write_text(train.read_text() + "\n".join(oos_lines[:6]) + "\n")
    test_oos.write_text(test.read_text() + "\n".join(oos_lines[6:]) + "\n")
    config = load_config(None, tiny_overrides(tiny_teacher_dir, tiny_student_dir) + ["valid_fraction=0.3"])
    result = run(config, RunInputs([train_oos], test=[test_oos]), tmp_path / "reg", tmp_path / "cache")
    labels = json.loads((result.artifact / "labels.json").read_text())
    assert "oos" not in labels and len(labels) == 29
    for model in ("teacher", "student"):
        oos = getattr(result.metrics, model).oos
        assert oos.oos_messages == 4
        assert 0 <= oos.recall <= 1 and 0 <= oos.auroc <= 1 and oos.in_scope_accuracy is not None
    calibration = json.loads((result.artifact / "calibration.json").read_text())
    assert calibration["oos_threshold"] == result.metrics.student.oos.threshold
    assert calibration["oos_score"] == result.metrics.student.oos.score == "energy"
    out = tmp_path / "eval.json"
    done = _cli("evaluate", "--model", str(tmp_path / "reg"), "--test", str(test_oos), "--out", str(out),
                "--latency-messages", "10")
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["student"]["oos"]["oos_messages"] == 4


def test_resume_carries_on_after_a_killed_run(tmp_path, small_data, tiny_teacher_dir, tiny_student_dir):
    train, test = small_data
    registry = tmp_path / "reg"
    sets = [arg for item in tiny_overrides(tiny_teacher_dir, tiny_student_dir) + ["epochs=20", "patience=20"]
            for arg in ("--set", item)]
    command = [sys.executable, "-m", "distill", "run", "--train", str(train), "--test", str(test),
               "--registry", str(registry), "--cache-dir", str(tmp_path / "cache"), *sets]
    killed = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed.poll() is None:
        logs = list(registry.glob(".runs/*/run_log.jsonl"))
        if logs and len(logs[0].read_text().splitlines()) >= 2:
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    assert killed.wait(timeout=30) == -signal.SIGKILL, "the run ended before it could be killed"
    assert list(registry.glob(".runs/*/student.ckpt")) and not Registry(registry).versions()
    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert re.search(r"student: resuming after epoch ([1-9]\d*)", resumed.stdout + resumed.stderr)
    artifact = Registry(registry).current()
    epochs = [json.loads(line)["epoch"] for line in (artifact.path / "run_log.jsonl").read_text().splitlines()]
    assert epochs[0] == 1 and epochs[-1] == 20 and epochs == sorted(set(epochs))  # never restarted at 1
    assert not list(registry.glob(".runs/*/student.ckpt"))  # checkpoints go once published


def test_a_run_whose_int8_model_misses_a_strict_gate_publishes_fp32_onnx_and_says_why(
        tmp_path, small_data, tiny_teacher_dir, tiny_student_dir):
    train, test = small_data
    strict = ["onnx=int8", "onnx_max_logit_diff=1e-4"]
    sets = [arg for item in tiny_overrides(tiny_teacher_dir, tiny_student_dir) + strict for arg in ("--set", item)]
    done = _cli("run", "--train", str(train), "--test", str(test), "--registry", str(tmp_path / "reg"),
                "--cache-dir", str(tmp_path / "cache"), *sets)
    assert done.returncode == 0, done.stderr
    why = (r"int8 logits differ from PyTorch's by up to 0\.\d+ > 0\.0001 \(best of 3 quantisation settings\); "
           r"serving the fp32 ONNX model")
    assert re.search(why, done.stdout) and re.search("served as onnx: " + why, done.stdout)
    artifact = Registry(tmp_path / "reg").current()
    assert (artifact.path / "model.onnx").exists() and not (artifact.path / "model.int8.onnx").exists()
    student = artifact.metrics().student
    assert student.backend == "onnx" and re.fullmatch(why, student.onnx.fallback)
    assert re.search(f"Served as onnx: {why}", (artifact.path / "MODEL_CARD.md").read_text())
    assert IntentClassifier.from_artifact(artifact).backend == "onnx"  # what the bot serves


def test_a_run_killed_after_training_resumes_with_other_export_settings_without_training_again(
        tmp_path, small_data, tiny_teacher_dir, tiny_student_dir):
    """The run folder is keyed by what changes training: `--resume --set onnx=...` finds the trained student."""
    train, test = small_data
    registry = tmp_path / "reg"
    command = [sys.executable, "-m", "distill", "run", "--train", str(train), "--test", str(test),
               "--registry", str(registry), "--cache-dir", str(tmp_path / "cache"),
               *[arg for item in tiny_overrides(tiny_teacher_dir, tiny_student_dir) for arg in ("--set", item)]]
    killed = subprocess.Popen([*command, "--set", "onnx=int8"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    for line in killed.stdout:  # exporting, calibrating and evaluating follow: seconds on the tiny models
        if line.startswith("[distill] distil student"):
            killed.send_signal(signal.SIGKILL)
            break
    assert killed.wait(timeout=30) == -signal.SIGKILL, "the run ended before it could be killed"
    trained = (next(registry.glob(".runs/*/run_log.jsonl"))).read_text()
    assert trained and not Registry(registry).versions()
    resumed = subprocess.run([*command, "--set", "onnx=none", "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "student: resuming after epoch 2" in resumed.stdout + resumed.stderr
    artifact = Registry(registry).current()
    assert (artifact.path / "run_log.jsonl").read_text() == trained  # not one more epoch
    assert artifact.metrics().student.backend == "torch" and not list(artifact.path.glob("*.onnx"))


def test_unlabelled_messages_are_labelled_by_the_teacher_and_filtered_by_its_confidence(
        tmp_path, small_data, tiny_teacher_dir, tiny_student_dir):
    train, test = small_data
    test_texts = [json.loads(line)["text"] for line in test.read_text().splitlines()]
    logs = tmp_path / "production.txt"
    logs.write_text("\n".join(["my parcel is late again", "can I swap these boots for a size 42",
                               "the lamp came broken", *test_texts[:2], "", "my parcel is late again"]) + "\n")
    config = load_config(None, tiny_overrides(tiny_teacher_dir, tiny_student_dir))
    inputs = RunInputs([train], test=[test], unlabelled=[logs])
    result = run(config, inputs, tmp_path / "reg", tmp_path / "cache")
    assert result.metrics.unlabelled.dump() == {"messages": 3, "used": 3, "min_confidence": 0.0}  # test texts left out
    strict = config.model_copy(update={"unlabelled_min_confidence": 1.01})
    assert run(strict, inputs, tmp_path / "reg", tmp_path / "cache").metrics.unlabelled.used == 0


@pytest.mark.parametrize("mode", [
    ["hidden_weight=1.0"],
    ["retrieval_weight=0.5"],
    ["feature_loss=cosine", "temperature=4.0", "alpha=0.9"],
], ids=["hidden-states", "multi-task-retrieval", "cosine-feature"])
def test_each_mode_runs_and_lowers_its_loss(tmp_path, small_data, tiny_teacher_dir, tiny_student_dir, mode):
    train, test = small_data
    config = load_config(None, tiny_overrides(tiny_teacher_dir, tiny_student_dir) + [
        "epochs=3", "patience=3", "warm_start=false", *mode])
    result = run(config, RunInputs([train], test=[test]), tmp_path / "reg", tmp_path / "cache")
    losses = [epoch.loss for epoch in result.metrics.student.training.history]
    assert len(losses) == 3 and losses[-1] < losses[0]


def test_hidden_state_layer_map(tmp_path, small_data, tiny_teacher_dir, tiny_student_dir):
    train, test = small_data
    config = load_config(None, tiny_overrides(tiny_teacher_dir, tiny_student_dir) + ["hidden_weight=1.0"])
    result = run(config, RunInputs([train], test=[test]), tmp_path / "reg", tmp_path / "cache")
    assert result.metrics.student.layer_map == {0: 0, 1: 0, 2: 1, 3: 1}  # 4 student layers onto 2
    with pytest.raises(ValueError, match="out of range"):
        run(config.model_copy(update={"layer_map": {0: 5}}), RunInputs([train], test=[test]), tmp_path / "r2",
            tmp_path / "cache")


@pytest.mark.parametrize("finetune", ["never", "always"], ids=["frozen-teacher-head", "whole-teacher"])
def test_mutual_distillation_trains_the_teacher_too(tmp_path, small_data, tiny_teacher_dir, tiny_student_dir,
                                                    finetune):
    """Bidirectional: the teacher also learns from the student's soft labels, so its figures change."""
    train, test = small_data
    base = load_config(None, tiny_overrides(tiny_teacher_dir, tiny_student_dir) + [
        f"teacher_finetune={finetune}", "teacher_epochs=1", "epochs=2", "patience=2"])
    alone = run(base, RunInputs([train], test=[test]), tmp_path / "a", tmp_path / "cache")
    mutual = run(base.model_copy(update={"mutual": True}), RunInputs([train], test=[test]), tmp_path / "b",
                 tmp_path / "cache")
    assert mutual.metrics.teacher.trained_with_student and not alone.metrics.teacher.trained_with_student
    teacher_alone, teacher_mutual = alone.metrics.teacher, mutual.metrics.teacher
    assert teacher_alone.ece != teacher_mutual.ece  # the teacher's logits moved
    losses = [epoch.loss for epoch in mutual.metrics.student.training.history]
    assert losses[-1] < losses[0]
