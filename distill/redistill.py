"""Periodic redistillation: turn what production taught into the next student, and publish it only if the
gate shows it is no worse.

    harvest the store (trusted labels; capped, deduplicated visitor text) → build the training set → distil
    a candidate (staged) → score candidate, current and the pinned baseline side by side → gate → publish
    atomically (or keep current) → report

Golden messages and a held-out slice of the agents' labels are never trained on. Raw visitor text lives only
in the work folder (`work_dir`, mounted by this job alone, pruned after `retention_days`), never in the
registry every API replica mounts. "Since" advances as soon as a window is harvested, so a rejected or
killed run does not bring the same batch back every night; the batch stays in the work folder for review.
The registry's lock keeps a second run out; a run killed at any point leaves `current` as it was."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import yaml

from bot.model.artifact import Artifact, Registry, write_atomic, write_json
from bot.model.nlu import IntentClassifier, scope_scores, softmax
from bot.model.redistill_state import STATE, RedistillState
from distill.config import DistillConfig
from distill.data import Example, load_examples
from distill.erasure import carry_out
from distill.gate import Evidence, GateSettings, Predictions, judge
from distill.harvest import Harvest, HarvestLimits, LabelSource, NewIntentSpec, collect
from distill.pipeline import run
from distill.run_inputs import RunInputs
from distill.training_set import TrainingSet, UnlabelledRules, build
from distill.weights import default_cache_dir

PUBLISHED, REJECTED, NOTHING_NEW = 0, 3, 4
OOS = "oos"
SETTLE = timedelta(minutes=1)
"""The harvest window ends this long before the run starts, so no message is still being written into it."""


@dataclass
class Options:
    registry: Path
    db_url: str
    config: DistillConfig
    train: list[Path]
    golden: Path
    templates: Path | None
    """None for a model that only classifies (no answers to retrieve)."""
    work_dir: Path
    """Where harvested visitor text is written: mounted by the redistillation job only."""
    cache_dir: Path | None = None
    since: datetime | None = None
    dry_run: bool = False
    gate: GateSettings = field(default_factory=GateSettings)
    limits: HarvestLimits = field(default_factory=HarvestLimits)
    unlabelled_rules: UnlabelledRules = field(default_factory=UnlabelledRules)
    holdout_fraction: float = 0.2
    keep_versions: int = 5
    retention_days: int = 30
    """Harvested batches (visitor text) older than this are deleted at the start of a run."""
    baseline: str | None = None
    """Pin this version as the drift baseline (else the one pinned before, else current at the first run)."""
    report_dir: Path | None = None
    from_current: bool = True
    """Start the candidate from the current student (all its layers) rather than from the base model: it
    keeps what it knew, and learning only what changed makes the golden set far steadier from run to run."""


def templates_with_new_intents(base: Path | None, new_intents: list[NewIntentSpec], target: Path) -> Path | None:
    """The base templates plus one template per intent added through the API (its answer and buttons, and a
    few of its examples for the retrieval index), unless the base already answers that intent."""
    if not new_intents:
        return base
    data = yaml.safe_load(base.read_text()) if base else {"slots": {}, "templates": []}
    answered = {t.get("intent") for t in data.get("templates") or []}
    data["templates"] = list(data.get("templates") or []) + [
        {"id": f"{i.name}_answer", "intent": i.name, "examples": list(i.examples[:5]), "text": i.answer,
         "buttons": list(i.buttons), "action": None} for i in new_intents if i.name not in answered]
    write_atomic(target, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return target


def data_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:20]


def served_decisions(artifact: Artifact, texts: list[str]) -> tuple[list[str], np.ndarray]:
    """What the artifact would decide for each text as served: its best intent, or out-of-scope under the
    served threshold (what a visitor would get), with the calibrated confidence."""
    classifier = IntentClassifier.from_artifact(artifact)
    calibration = artifact.calibration()
    logits = classifier.logits(texts)
    probs = softmax(logits / calibration.temperature)
    in_scope = scope_scores(logits, calibration.temperature, calibration.oos_score) >= calibration.oos_threshold
    best = probs.argmax(-1)
    decided = [classifier.labels[i] if keep else OOS for i, keep in zip(best.tolist(), in_scope.tolist())]
    return decided, probs.max(-1).astype(np.float64)


def predictions(artifact: Artifact, examples: list[Example]) -> Predictions | None:
    """The artifact's served decisions on labelled examples (see served_decisions)."""
    if not examples:
        return None
    return Predictions([e.intent for e in examples], *served_decisions(artifact, [e.text for e in examples]))


def prune_batches(work_dir: Path, retention_days: int) -> list[str]:
    """Delete harvested batches older than the retention period (their visitor text with them)."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    expired = [p for p in work_dir.glob("batch-*")
               if p.is_dir() and datetime.fromtimestamp(p.stat().st_mtime, UTC) < cutoff]
    for path in expired:
        shutil.rmtree(path)
    return sorted(p.name for p in expired)


def _write_batch(folder: Path, training: TrainingSet, harvest: Harvest) -> None:
    """The run's harvested material, kept for review whatever the gate decides (and pruned by retention)."""
    folder.mkdir(parents=True)
    lines = lambda examples: "".join(json.dumps({"text": e.text, "intent": e.intent}, ensure_ascii=False) + "\n"  # noqa: E731
                                     for e in examples)
    write_atomic(folder / "train.jsonl", lines(training.train))
    write_atomic(folder / "unlabelled.txt", "".join(" ".join(t.split()) + "\n" for t in training.unlabelled))
    write_atomic(folder / "held_out.jsonl", lines(training.held_out_corrections + training.held_out_confirmations))
    write_json(folder / "waiting_for_admin.json", [asdict(item) for item in training.waiting_for_admin])
    write_json(folder / "dropped.json", harvest.dropped)


def redistill(options: Options) -> tuple[int, dict]:
    """One run, under the registry's lock. Returns the exit code (0 published, 3 rejected by the gate,
    4 nothing new to learn) and the report."""
    registry = Registry(options.registry)
    with registry.lock():
        cleared = registry.clean_staging()
        current = registry.current()
        if current is None:
            raise ValueError(f"{options.registry}: no current version to improve on; run `distill run` first")
        state_path = registry.root / STATE
        state = RedistillState.load(state_path)
        if options.baseline:
            state.baseline = registry.check_version(options.baseline)
        if state.baseline not in registry.versions():  # none pinned yet, or its folder was deleted by hand
            state.baseline = current.version
        since = options.since or state.harvested_until
        started = datetime.now(UTC)
        until = started - SETTLE  # a turn stamped just before the start may commit just after the read
        options.work_dir.mkdir(parents=True, exist_ok=True)
        expired = prune_batches(options.work_dir, options.retention_days)
        erased = carry_out(options.db_url, state.erasures_done, options.work_dir,
                           options.cache_dir or default_cache_dir())
        state.erasures_done = erased.done
        state.save(state_path)
        digest = data_digest([*options.train, *([options.templates] if options.templates else [])])
        harvest = collect(options.db_url, since, until=until, limits=options.limits)
        golden = load_examples(options.golden)
        training = build([e for path in options.train for e in load_examples(path)], harvest, golden,
                         options.holdout_fraction)
        report = _report_start(current, since, started, cleared, expired, harvest, training, state, digest)
        report["erasures"] = asdict(erased)
        if options.dry_run:  # the window is not consumed: the real run still harvests it
            return _finish(options, registry, report, PUBLISHED, "dry run: nothing distilled")
        batch = options.work_dir / f"batch-{started.strftime('%Y%m%dT%H%M%S%fZ')}"
        _write_batch(batch, training, harvest)
        report["batch"] = str(batch)
        state.harvested_until = until  # from here on this window is spent, whatever happens next
        state.save(state_path)
        if not sum(harvest.new_since.values()) and digest == state.data_digest:
            return _finish(options, registry, report, NOTHING_NEW, "nothing new to learn since the last run")
        return _distil_and_gate(options, registry, current, harvest, training, golden, report, batch, state)


def _report_start(current: Artifact, since, started, cleared, expired, harvest: Harvest, training: TrainingSet,
                  state: RedistillState, digest: str) -> dict:
    waiting = [f"{item.predicted or '?'} → {item.intent}" for item in training.waiting_for_admin]
    return {"started_at": started.isoformat(timespec="seconds"), "current": current.version,
            "baseline": state.baseline, "since": since.isoformat() if since else None,
            "cleared_leftovers": cleared, "expired_batches": expired,
            "harvest": {"new_since_last_run": harvest.new_since,
                        "labelled": {s.value: sum(1 for i in harvest.labelled if i.source == s)
                                     for s in LabelSource},
                        "thumbs_up_not_used": harvest.thumbs_up,
                        "new_intents_added": [i.name for i in harvest.new_intents],
                        "unlabelled": len(harvest.unlabelled), "dropped": harvest.dropped},
            "data": {"train_messages": len(training.train),
                     "held_out_corrections": len(training.held_out_corrections),
                     "held_out_confirmations": len(training.held_out_confirmations),
                     "held_out_earlier_corrections": len(training.held_out_earlier_corrections),
                     "unlabelled_messages": len(training.unlabelled), "added": training.added,
                     "waiting_for_admin": waiting, "base_data_changed": digest != state.data_digest},
            "digest": digest}


def _evidence(current: Artifact, candidate: Artifact, baseline: Artifact, golden: list[Example],
              training: TrainingSet) -> Evidence:
    scored, scored_candidate = predictions(current, golden), predictions(candidate, golden)
    if scored is None or scored_candidate is None:
        raise ValueError("the golden set is empty: the gate has nothing to judge on")
    kept = training.held_out_confirmations + training.held_out_earlier_corrections  # must not get worse
    return Evidence(
        golden_current=scored, golden_candidate=scored_candidate,
        golden_baseline=scored if baseline is current else predictions(baseline, golden),
        corrections_current=predictions(current, training.held_out_corrections),
        corrections_candidate=predictions(candidate, training.held_out_corrections),
        confirmations_current=predictions(current, kept),
        confirmations_candidate=predictions(candidate, kept))


def _distil_and_gate(options: Options, registry: Registry, current: Artifact, harvest: Harvest,
                     training: TrainingSet, golden: list[Example], report: dict, batch: Path,
                     state: RedistillState) -> tuple[int, dict]:
    assert state.baseline is not None, "redistill pins the baseline before training"
    train_file, unlabelled_file = batch / "train.jsonl", batch / "unlabelled.txt"
    templates = templates_with_new_intents(options.templates, harvest.new_intents, batch / "templates.yml")
    unlabelled = [" ".join(t.split()) for t in training.unlabelled]
    # agreement as served: a message the current bot would not answer (out of scope) agrees with no intent
    student_intents = served_decisions(current, unlabelled)[0] if unlabelled else []
    inputs = RunInputs([train_file], test=[options.golden], templates=templates,
                       unlabelled=[unlabelled_file] if unlabelled else [], unlabelled_rules=options.unlabelled_rules,
                       unlabelled_student=dict(zip(unlabelled, student_intents)))
    config = options.config
    if options.from_current:
        config = config.model_copy(update={"student": str(current.path.resolve() / "encoder"),
                                           "student_layers": None})
    report["candidate_starts_from"] = config.student
    result = run(config, inputs, registry.root, options.cache_dir, force=True, publish=False)
    assert result.artifact is not None, "a staged run's (rank 0's) result names its folder"
    candidate = Artifact(result.artifact)
    try:
        metrics = result.metrics
        assert metrics is not None  # a staged run's (rank 0's) result always has them
        student = metrics.student
        # the serving image runs ONNX only: a candidate served by PyTorch could not be served
        if student.onnx is not None and student.onnx.served == "torch":
            registry.discard(candidate.path)
            report["gate"] = [{"name": "onnx_export", "passed": False, "sentence": student.onnx.fallback}]
            return _finish(options, registry, report, REJECTED, "the ONNX export failed its agreement check")
        baseline = current if state.baseline == current.version else Artifact(registry.root / state.baseline)
        checks = judge(_evidence(current, candidate, baseline, golden, training), options.gate)
        report.update(gate=[c.to_dict() for c in checks], gate_settings=asdict(options.gate),
                      int8_agreement=student.onnx.dump() if student.onnx is not None else {},
                      new_intents=sorted(set(candidate.labels()) - set(current.labels())),
                      unlabelled_used=metrics.unlabelled.dump() if metrics.unlabelled is not None else None)
        if not all(c.passed for c in checks):
            registry.discard(candidate.path)
            state.data_digest = report["digest"]  # tried: a rejected base-data change does not rerun every night
            state.save(registry.root / STATE)
            failed = "; ".join(c.name for c in checks if not c.passed)
            return _finish(options, registry, report, REJECTED, f"kept {current.version}: failed {failed}")
        published = registry.publish(candidate.path, candidate.manifest.get("fingerprint", ""),
                                     current.manifest.get("descends_from") or current.manifest.get("fingerprint"))
    except BaseException:
        registry.discard(candidate.path)
        raise
    state.published, state.data_digest = published.version, report["digest"]
    state.save(registry.root / STATE)
    report["published"] = published.version
    report["pruned"] = registry.prune(options.keep_versions, frozenset({state.baseline}))
    return _finish(options, registry, report, PUBLISHED, f"published {published.version}")


def _finish(options: Options, registry: Registry, report: dict, code: int, decision: str) -> tuple[int, dict]:
    report.update(decision=decision, exit_code=code, finished_at=datetime.now(UTC).isoformat(timespec="seconds"))
    folder = options.report_dir or registry.root / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"redistill-{report['started_at'].replace(':', '')}"
    write_json(folder / f"{stem}.json", report)
    write_atomic(folder / f"{stem}.md", markdown(report))
    report["report_files"] = [str(folder / f"{stem}.json"), str(folder / f"{stem}.md")]
    return code, report


def _figure(value) -> str:
    return "–" if value is None else f"{100 * value:+.2f}" if isinstance(value, float) else str(value)


def markdown(report: dict) -> str:
    """The report for people: the decision, what was learned from where, and each gate check in words."""
    harvest, data = report["harvest"], report["data"]
    lines = [f"# Redistillation {report['started_at']}", "", f"**Decision:** {report['decision']}", "",
             f"Current before the run: {report['current']}; drift baseline: {report['baseline']}; harvested "
             f"since {report['since'] or 'the beginning'}.", "", "## Data", ""]
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in harvest["labelled"].items()]
    lines += [f"- visitors' thumbs-up (counted, never used as labels): {harvest['thumbs_up_not_used']}",
              f"- visitor messages for the teacher to label: {harvest['unlabelled']} (left out: {harvest['dropped']})",
              f"- new since the last run: {harvest['new_since_last_run']}",
              f"- training messages: {data['train_messages']}; held out: {data['held_out_corrections']} new "
              f"corrections, {data['held_out_confirmations']} confirmations, "
              f"{data.get('held_out_earlier_corrections', 0)} earlier corrections; unlabelled: "
              f"{data['unlabelled_messages']}",
              f"- added or relabelled: {data['added']}; base data changed: {data['base_data_changed']}"]
    if data["waiting_for_admin"]:
        lines.append(f"- corrections that contradict the base data, not applied until an admin approves them "
                     f"({len(data['waiting_for_admin'])}): {', '.join(data['waiting_for_admin'])}")
    if report.get("new_intents"):
        lines.append(f"- new intents: {', '.join(report['new_intents'])}")
    if report.get("unlabelled_used"):
        lines.append(f"- unlabelled messages the teacher's labels were used for: {report['unlabelled_used']}")
    if report.get("gate"):
        lines += ["", "## Gate", "", "| check | passed | estimate | interval | limit | messages |",
                  "|---|---|---|---|---|---|"]
        for c in report["gate"]:
            interval = f"[{_figure(c.get('low'))}, {_figure(c.get('high'))}]" if c.get("low") is not None else "–"
            lines.append(f"| {c['name']} | {'yes' if c['passed'] else '**no**'} | {_figure(c.get('estimate'))} | "
                         f"{interval} | {_figure(c.get('limit'))} | {c.get('messages', '–')} |")
        lines += ["", "Figures are points (×100); intervals are the gate's confidence bounds.", ""]
        lines += [f"- **{c['name']}**: {c['sentence']}" for c in report["gate"]]
    return "\n".join(lines) + "\n"
