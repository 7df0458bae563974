"""`python -m distill`: distil a student from a teacher, evaluate artifacts."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from distill.gate import GateSettings
from distill.harvest import HarvestLimits

app = typer.Typer(help="Distil a small, fast intent model from a large teacher and publish it to a registry.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


class _ProgressLines(logging.Handler):
    """The run's progress lines (`[distill] teacher: 2.2s`), on stdout as they always were. Written to the
    sys.stdout of the moment: typer's test runner swaps it for each call."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(f"[distill] {self.format(record)}\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def show_progress() -> None:
    """Print what `distill` logs at INFO and above as `[distill] …` lines on stdout. Its loggers only: a root
    handler would add other libraries' INFO lines (faiss says which instruction set it loaded); and they stop
    there, since onnxruntime's int8 quantiser puts a root handler in place when imported."""
    log = logging.getLogger("distill")
    log.setLevel(logging.INFO)
    log.propagate = False
    if not any(isinstance(handler, _ProgressLines) for handler in log.handlers):
        log.addHandler(_ProgressLines())


@app.callback()
def _main() -> None:
    """Commands of the distillation subsystem."""
    show_progress()


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _gpu_if_asked(device: str | None) -> str | None:
    """`--device cuda` without a visible GPU fails at once, before any data or weights load."""
    if device is not None and device.startswith("cuda"):
        from distill.trainer import resolve_device

        try:
            resolve_device(device)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return device


@app.command()
def run(
    train: Annotated[list[Path], typer.Option(help="Labelled training data (.jsonl, .csv or Rasa .yml); "
                                                   "give it more than once to combine files.")],
    registry: Annotated[Path, typer.Option(help="Model registry folder to publish the new version into.")],
    valid: Annotated[list[Path] | None, typer.Option(help="Validation data for choosing the best epoch, "
                                                          "calibration, the ONNX parity check and the "
                                                          "out-of-scope threshold (repeatable); default: a "
                                                          "stratified slice of --train.")] = None,
    test: Annotated[list[Path] | None, typer.Option(help="Held-out test data for the metrics (repeatable; "
                                                         "default: the validation data).")] = None,
    unlabelled: Annotated[list[Path] | None, typer.Option(help="Plain messages (.txt one per line, or the text "
                                                               "of .jsonl/.csv), e.g. production logs, labelled "
                                                               "by the teacher for distillation (repeatable).")] = None,
    templates: Annotated[Path | None, typer.Option(help="Answer templates (YAML) to index with FAISS; "
                                                           "needed to serve the bot.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML config file (see configs/distill.yaml).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key, e.g. --set epochs=3 "
                                                          "(repeatable).")] = None,
    student_layers: Annotated[str | None, typer.Option(help="Keep this many student layers (e.g. 3), or "
                                                               "these indices (e.g. 0,2,4).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs of student distillation (default: chosen from the "
                                                    "data size, see min_steps in the config).")] = None,
    device: Annotated[str | None, typer.Option(help="auto (CUDA when present), cpu or cuda (fails without a "
                                                   "GPU).", callback=_gpu_if_asked)] = None,
    label_column: Annotated[str | None, typer.Option(help="CSV label column (default: intent, label "
                                                             "or category).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Weights and teacher-output cache (default: $DISTILBOT_CACHE or ~/.cache/distilbot).")] = None,
    force: Annotated[bool, typer.Option(help="Distil again even if the current version came from the same "
                                             "data and config.")] = False,
    resume: Annotated[bool, typer.Option(help="Carry on from the last epoch checkpoint of an interrupted run of "
                                              "the same data and config (default: start over).")] = False,
) -> None:
    """Distil a student from the teacher on your data, evaluate both, and publish the student (under the
    registry's lock, waiting while a redistillation or a rollback holds it). Exit 2 bad input, 5 the same
    data and config are being distilled into this registry already."""
    from distill.config import load_config
    from distill.run_inputs import RunInputs, run_fingerprint, up_to_date, why_up_to_date

    overrides = list(set_ or [])
    if student_layers is not None:
        value = f"[{student_layers}]" if "," in student_layers else student_layers
        overrides.append(f"student_layers={value}")
    if epochs is not None:
        overrides.append(f"epochs={epochs}")
    if device is not None:
        overrides.append(f"device={device}")
    inputs = RunInputs(train, valid or [], test or [], templates, label_column, unlabelled or [])
    try:
        cfg = load_config(config, overrides)
        fingerprint = run_fingerprint(cfg, inputs)
        current = None if force else up_to_date(registry, fingerprint)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    if current is not None:  # checked before importing torch: a rerun of `make demo` starts at once
        typer.echo(f"{why_up_to_date(current, fingerprint)} -> {current.path}")
        return
    from bot.model.artifact import RegistryBusy
    from distill.data import DataError
    from distill.pipeline import run as run_pipeline
    from distill.weights import WeightsError

    try:
        result = run_pipeline(cfg, inputs, registry, cache_dir, force, resume)
    except RegistryBusy as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(5) from None
    except (DataError, WeightsError, ValueError, OSError) as exc:
        _fail(str(exc))
    if result.artifact is None:
        typer.echo(f"rank {result.rank}: training done; rank 0 evaluates and publishes")
        return
    m = result.metrics
    if m is None:  # up to date (a run of the same data and config published it meanwhile), without metrics.json
        typer.echo(f"-> {result.artifact}")
        return
    from distill.card import speed_sentence

    typer.echo(f"teacher accuracy {m.teacher.accuracy:.4f}  student accuracy {m.student.accuracy:.4f}"
               f"  retention {m.retention:.4f}  -> {result.artifact}\n{speed_sentence(m)}")
    if m.student.onnx is not None and m.student.onnx.fallback:
        typer.echo(f"served as {m.student.backend}: {m.student.onnx.fallback}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="An artifact folder, or a registry (its current version).")],
    test: Annotated[Path, typer.Option(help="Labelled data to evaluate on (.jsonl, .csv or Rasa .yml).")],
    out: Annotated[Path | None, typer.Option(help="Write the metrics JSON here (default: stdout).")] = None,
    label_column: Annotated[str | None, typer.Option(help="CSV label column.")] = None,
    latency_messages: Annotated[int, typer.Option(help="Messages timed one at a time for latency.")] = 200,
) -> None:
    """Measure a published student on a labelled file: accuracy, macro-F1, per intent, latency."""
    from bot.model.artifact import ArtifactError
    from distill.data import DataError
    from distill.side_by_side import evaluate_artifact

    try:
        evaluation = evaluate_artifact(model, test, label_column, latency_messages)
    except (DataError, ArtifactError, OSError) as exc:
        _fail(str(exc))
    text = json.dumps(evaluation.dump(), indent=2)
    if out:
        out.write_text(text + "\n")
        s = evaluation.student
        typer.echo(f"{evaluation.model_version}: accuracy {s.accuracy:.4f}, macro-F1 {s.macro_f1:.4f}, "
                   f"p50 {s.latency_ms.p50:.1f} ms -> {out}")
    else:
        sys.stdout.write(text + "\n")


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="metrics.json, an artifact folder, or a registry (its current).")],
    run_b: Annotated[Path, typer.Argument(help="The same, for the second run.")],
) -> None:
    """Print two runs' metrics side by side, with the difference B - A."""
    from bot.model.artifact import ArtifactError
    from distill.compare import comparison_table, load_metrics

    try:
        a, b = load_metrics(run_a), load_metrics(run_b)
    except (ArtifactError, OSError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(comparison_table(a, b, str(run_a), str(run_b)))


GATE, LIMITS = GateSettings(), HarvestLimits()


@app.command()
def redistill(
    registry: Annotated[Path, typer.Option(help="Model registry whose current version the run tries to "
                                                "improve on (and publishes into).")],
    db: Annotated[str, typer.Option(envvar="DISTILBOT_DB_URL",  # a URL with a password: keep it off command lines
                                    help="SQLAlchemy URL of the bot's store, read for agents' corrections and "
                                         "confirmations, approved new intents and new visitor messages "
                                         "(never written).")],
    work_dir: Annotated[Path, typer.Option(envvar="DISTILBOT_REDISTILL_WORK",
                                           help="Where harvested visitor text is kept for review: a folder only "
                                                "this job mounts, never the registry the API replicas read.")] =
        Path("var/redistill"),
    retention_days: Annotated[int, typer.Option(min=1, help="Harvested batches (visitor text) older than this "
                                                            "many days are deleted.")] = 30,
    since: Annotated[datetime | None, typer.Option(help="Take visitor messages from this time on (ISO, UTC); "
                                                        "default: where the last run's harvest ended.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Harvest, merge and report what would be learned; distil "
                                               "nothing and leave the harvest window for the real run.")] = False,
    train: Annotated[list[Path] | None, typer.Option(help="Base labelled data, repeatable (default: "
                                                          "data/train.jsonl).")] = None,
    golden: Annotated[Path, typer.Option(help="Fixed golden test set, never trained on.")] = Path("data/test.jsonl"),
    templates: Annotated[Path, typer.Option(help="Answer templates (a new intent needs one).")] =
        Path("data/templates.yml"),
    config: Annotated[Path | None, typer.Option(help="Distillation config (default: the current version's own, "
                                                     "so the candidate differs only by what it learned).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key (repeatable).")] = None,
    baseline: Annotated[str | None, typer.Option(help="Pin this version as the drift baseline every later "
                                                      "candidate is also compared with (default: the one pinned "
                                                      "before, else the current version at the first run).")] = None,
    tolerance: Annotated[float | None, typer.Option(help="Golden-set accuracy loss against current that must be "
                                                         "ruled out (0.01 = 1 point; default "
                                                         f"{GATE.tolerance}).")] = None,
    drift_tolerance: Annotated[float | None, typer.Option(help="The same against the pinned baseline (default "
                                                             f"{GATE.drift_tolerance}).")] = None,
    oos_tolerance: Annotated[float | None, typer.Option(help="Out-of-scope recall loss that must be ruled out "
                                                             "(when the golden set has oos messages; default "
                                                             f"{GATE.oos_tolerance}).")] = None,
    ece_tolerance: Annotated[float | None, typer.Option(help="Calibration error (ECE) increase that must be "
                                                             f"ruled out (default {GATE.ece_tolerance}).")] = None,
    intent_drop: Annotated[float | None, typer.Option(help="Most golden-set recall any one intent may lose "
                                                             f"(default {GATE.intent_drop}).")] = None,
    min_held_out: Annotated[int | None, typer.Option(help="Held-out corrections (and confirmations) needed before "
                                                          f"their check counts (default {GATE.min_held_out}).")] = None,
    confidence: Annotated[float | None, typer.Option(help="Confidence of the gate's one-sided bounds "
                                                             f"(default {GATE.confidence}).")] = None,
    per_conversation: Annotated[int | None, typer.Option(help="Most visitor messages taken from one "
                                                              "conversation (default "
                                                              f"{LIMITS.per_conversation}).")] = None,
    per_client_per_day: Annotated[int | None, typer.Option(help="Most visitor messages taken from one client "
                                                                f"address per day (default "
                                                                f"{LIMITS.per_client_per_day}).")] = None,
    per_day: Annotated[int | None, typer.Option(help="Most visitor messages taken per day in all "
                                                     f"(default {LIMITS.per_day}).")] = None,
    holdout: Annotated[float, typer.Option(help="Share of corrections and confirmations held out to check the "
                                                "candidate (never trained on).")] = 0.2,
    keep: Annotated[int, typer.Option(help="Versions kept in the registry (current, its predecessor and the "
                                           "baseline always are).")] = 5,
    report_dir: Annotated[Path | None, typer.Option(help="Where the Markdown and JSON reports go "
                                                         "(default: REGISTRY/reports).")] = None,
    from_scratch: Annotated[bool, typer.Option(help="Start the candidate from the base student model instead of "
                                                    "the current version's student.")] = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Weights and teacher-output cache.")] = None,
) -> None:
    """Learn from production: agents' corrections and confirmations, approved new intents and (capped,
    filtered) new visitor messages become the next student, published only if the gate rules out a
    regression. Exit 0 published, 3 rejected by the gate, 4 nothing new to learn, 5 another run holds the
    registry, 2 bad input."""
    from bot.model.artifact import ArtifactError, RegistryBusy
    from distill.config import load_config
    from distill.data import DataError
    from distill.redistill import Options
    from distill.redistill import redistill as run_redistill
    from distill.weights import WeightsError

    given = lambda **values: {k: v for k, v in values.items() if v is not None}  # noqa: E731
    config = config or registry / "current" / "config.json"
    try:
        gate = GateSettings(**given(tolerance=tolerance, drift_tolerance=drift_tolerance, oos_tolerance=oos_tolerance,
                                    ece_tolerance=ece_tolerance, intent_drop=intent_drop, min_held_out=min_held_out,
                                    confidence=confidence))
        limits = HarvestLimits(**given(per_conversation=per_conversation, per_client_per_day=per_client_per_day,
                                       per_day=per_day))
        options = Options(registry=registry, db_url=db, config=load_config(config, set_ or []),
                          train=train or [Path("data/train.jsonl")], golden=golden, templates=templates,
                          work_dir=work_dir, cache_dir=cache_dir,
                          since=since.replace(tzinfo=since.tzinfo or UTC) if since else None, dry_run=dry_run,
                          gate=gate, limits=limits, holdout_fraction=holdout, keep_versions=keep,
                          retention_days=retention_days, baseline=baseline, report_dir=report_dir,
                          from_current=not from_scratch)
        code, report = run_redistill(options)
    except RegistryBusy as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(5) from None
    except (DataError, WeightsError, ArtifactError, ValueError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"{report['decision']} (report: {report['report_files'][1]})")
    raise typer.Exit(code)


@app.command()
def erase(
    registry: Annotated[Path, typer.Option(help="Model registry (its redistillation state records which erasures "
                                                "are done).")],
    db: Annotated[str, typer.Option(envvar="DISTILBOT_DB_URL",
                                    help="SQLAlchemy URL of the bot's store, read for the erasures admins made "
                                         "(never written).")],
    work_dir: Annotated[Path, typer.Option(envvar="DISTILBOT_REDISTILL_WORK",
                                           help="The redistillation's work folder (harvested visitor text).")] =
        Path("var/redistill"),
    cache_dir: Annotated[Path | None, typer.Option(help="Weights and teacher-output cache (default: "
                                                        "$DISTILBOT_CACHE or ~/.cache/distilbot).")] = None,
) -> None:
    """Carry out the visitor erasures made in the console now, instead of at the next redistillation: remove the
    erased messages from the harvested batches in the work folder and their teacher outputs from the cache.
    Runs under the registry's lock (exit 5 while a redistillation holds it); 2 on bad input."""
    from bot.model.artifact import ArtifactError, Registry, RegistryBusy
    from distill.erasure import carry_out
    from distill.harvest import StoreError
    from distill.redistill import STATE, RedistillState
    from distill.weights import default_cache_dir

    store = Registry(registry)
    try:
        with store.lock():
            state = RedistillState.load(store.root / STATE)
            done = carry_out(db, state.erasures_done, work_dir, cache_dir or default_cache_dir())
            state.erasures_done = done.done
            state.save(store.root / STATE)
    except RegistryBusy as exc:
        typer.echo(f"error: {exc}; try again when it is done", err=True)
        raise typer.Exit(5) from None
    except (StoreError, ArtifactError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"{done.erasures} erasures carried out ({len(done.done)} in all): {done.batch_lines} harvested lines "
               f"and {done.cache_entries} teacher outputs removed")
