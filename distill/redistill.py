"""Periodic redistillation: turn what happened in production into the next student, and publish it only
if it is better.

    harvest the store → merge with the base data → distil a candidate (staged, not published) →
    score candidate and current side by side → gate → publish atomically (or keep current) → report

Golden test messages and a held-out slice of the corrections are never trained on. The registry's lock
keeps a second run out; a run killed at any point leaves `current` as it was (the candidate only ever
lives in a staging folder, which the next run clears) and never writes to the store."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bot.artifact import Artifact, Registry, read_json, write_atomic, write_json
from bot.nlu import IntentClassifier
from distill.config import DistillConfig
from distill.data import Example, load_examples
from distill.evaluate import classification_metrics
from distill.export import ExportError
from distill.harvest import Harvest, collect
from distill.pipeline import run
from distill.run_inputs import RunInputs

PUBLISHED, REJECTED, NOTHING_NEW = 0, 3, 4
STATE = "redistill_state.json"


@dataclass
class Gate:
    tolerance: float = 0.005
    """Most golden-set accuracy the candidate may lose (0.005 = half a point)."""
    min_recall: float = 0.5
    """Least recall on the golden set every intent must keep."""


@dataclass
class Merged:
    train: list[Example]
    held_out: list[Example]
    unlabelled: list[str]
    added: dict = field(default_factory=dict)


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _holdout_rank(text: str) -> int:
    return int(hashlib.sha256(normalise(text).encode()).hexdigest()[:8], 16)


def merge(base: list[Example], harvest: Harvest, golden: list[Example], holdout_fraction: float) -> Merged:
    """Base data plus what agents and visitors labelled (a correction overrides any earlier label of the
    same text), minus the golden set and a held-out slice of the corrections, which are never trained on.
    The slice is chosen by a hash of the text, so a message stays on the same side from run to run."""
    corrections = [item for item in harvest.labelled if item.source == "correction"]
    held = [c for c in corrections if _holdout_rank(c.text) % 1000 < holdout_fraction * 1000]
    if not held and len(corrections) >= 2 and holdout_fraction > 0:
        held = [min(corrections, key=lambda c: _holdout_rank(c.text))]
    held_keys = {normalise(c.text) for c in held}
    never_train = held_keys | {normalise(e.text) for e in golden}
    train = {normalise(e.text): e for e in base if normalise(e.text) not in never_train}
    added = Counter()
    order = {"thumbs_up": 0, "new_intent": 1, "confirmation": 2, "correction": 3}  # the agents' word last: it wins
    for item in sorted(harvest.labelled, key=lambda i: order[i.source]):
        key = normalise(item.text)
        if key in never_train:
            continue
        if key in train and train[key].intent != item.intent:
            added["relabelled_base_or_earlier"] += 1
        train[key] = Example(item.text, item.intent)
        added[item.source] += 1
    unlabelled = [t for t in dict.fromkeys(harvest.unlabelled) if normalise(t) not in train
                  and normalise(t) not in never_train]
    held_out = list({normalise(c.text): Example(c.text, c.intent) for c in held}.values())
    return Merged(list(train.values()), held_out, unlabelled, dict(added))


def templates_with_new_intents(base: Path | None, new_intents: list[dict], target: Path) -> Path | None:
    """The base templates plus one template per intent added through the API (its answer and buttons, and a
    few of its examples for the retrieval index), unless the base already answers that intent."""
    if not new_intents:
        return base
    data = yaml.safe_load(base.read_text()) if base else {"slots": {}, "templates": []}
    answered = {t.get("intent") for t in data.get("templates") or []}
    data["templates"] = list(data.get("templates") or []) + [
        {"id": f"{i['name']}_answer", "intent": i["name"], "examples": i["examples"][:5], "text": i["answer"],
         "buttons": i["buttons"], "action": None} for i in new_intents if i["name"] not in answered]
    write_atomic(target, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return target


def data_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:20]


def score(artifact: Artifact, examples: list[Example]) -> dict:
    """The artifact's served model on labelled examples: accuracy and recall per intent."""
    if not examples:
        return {"accuracy": None, "per_intent": {}, "messages": 0}
    classifier = IntentClassifier.from_artifact(artifact)
    predicted = [classifier.labels[i] for i in classifier.logits([e.text for e in examples]).argmax(-1).tolist()]
    metrics = classification_metrics([e.intent for e in examples], predicted)
    return {"accuracy": metrics["accuracy"], "messages": len(examples),
            "per_intent": {k: v["recall"] for k, v in metrics["per_intent"].items()}}


def judge(before: dict, after: dict, gate: Gate) -> list[dict]:
    """Each gate check with its figures and whether it passed."""
    golden_drop = before["golden"]["accuracy"] - after["golden"]["accuracy"]
    checks = [{"check": "golden-set accuracy drops by at most the tolerance", "passed": golden_drop <= gate.tolerance,
               "before": before["golden"]["accuracy"], "after": after["golden"]["accuracy"],
               "tolerance": gate.tolerance}]
    if after["held_out"]["messages"]:
        b, a = before["held_out"]["accuracy"], after["held_out"]["accuracy"]
        checks.append({"check": "held-out corrections improve", "passed": a > b or a == 1.0, "before": b,
                       "after": a, "messages": after["held_out"]["messages"]})
    weak = {k: v for k, v in after["golden"]["per_intent"].items() if v < gate.min_recall}
    checks.append({"check": "every intent keeps the minimum recall", "passed": not weak,
                   "min_recall": gate.min_recall, "below": weak})
    return checks


@dataclass
class Options:
    registry: Path
    db_url: str
    config: DistillConfig
    train: list[Path]
    golden: Path
    templates: Path | None
    """None for a model that only classifies (no answers to retrieve)."""
    cache_dir: Path | None = None
    since: datetime | None = None
    dry_run: bool = False
    gate: Gate = field(default_factory=Gate)
    holdout_fraction: float = 0.2
    keep_versions: int = 5
    report_dir: Path | None = None
    from_current: bool = True
    """Start the candidate from the current student (all its layers) rather than from the base model: it
    keeps what it knew, and learning only what changed makes the golden set far steadier from run to run."""


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
        state = read_json(state_path) if state_path.exists() else {}
        since = options.since or (datetime.fromisoformat(state["last_run_at"]) if "last_run_at" in state else None)
        started = datetime.now(UTC)
        digest = data_digest([*options.train, *([options.templates] if options.templates else [])])
        harvest = collect(options.db_url, since)
        golden = load_examples(options.golden)
        merged = merge([e for path in options.train for e in load_examples(path)], harvest, golden,
                       options.holdout_fraction)
        report = {"started_at": started.isoformat(timespec="seconds"), "current": current.version,
                  "since": since.isoformat() if since else None, "cleared_leftovers": cleared,
                  "harvest": {"new_since_last_run": harvest.new_since,
                              "labelled": {s: harvest.count(s) for s in ("correction", "confirmation", "thumbs_up",
                                                                         "new_intent")},
                              "new_intents_added": [i["name"] for i in harvest.new_intents],
                              "unlabelled": len(harvest.unlabelled)},
                  "data": {"train_messages": len(merged.train), "held_out_corrections": len(merged.held_out),
                           "unlabelled_messages": len(merged.unlabelled), "added": merged.added,
                           "base_data_changed": digest != state.get("data_digest")}}
        fresh = sum(harvest.new_since.values())
        if not fresh and digest == state.get("data_digest"):
            return _finish(options, registry, report, NOTHING_NEW, "nothing new to learn since the last run")
        if options.dry_run:
            return _finish(options, registry, report, PUBLISHED, "dry run: nothing distilled")
        return _distil_and_gate(options, registry, current, harvest, merged, golden, report, started, digest)


def _distil_and_gate(options: Options, registry: Registry, current: Artifact, harvest: Harvest, merged: Merged,
                     golden: list[Example], report: dict, started: datetime, digest: str) -> tuple[int, dict]:
    work = registry.root / ".redistill"
    work.mkdir(exist_ok=True)
    train_file, unlabelled_file = work / "train.jsonl", work / "unlabelled.txt"
    write_atomic(train_file, "".join(json.dumps({"text": e.text, "intent": e.intent}, ensure_ascii=False) + "\n"
                                     for e in merged.train))
    write_atomic(unlabelled_file, "".join(" ".join(t.split()) + "\n" for t in merged.unlabelled))
    templates = templates_with_new_intents(options.templates, harvest.new_intents, work / "templates.yml")
    inputs = RunInputs([train_file], test=[options.golden], templates=templates,
                       unlabelled=[unlabelled_file] if merged.unlabelled else [])
    config = options.config
    if options.from_current:
        config = config.model_copy(update={"student": str(current.path.resolve() / "encoder"),
                                           "student_layers": None})
    report["candidate_starts_from"] = config.student
    try:
        result = run(config, inputs, registry.root, options.cache_dir, force=True, publish=False)
    except ExportError as exc:
        report["gate"] = [{"check": "int8 export agrees with the PyTorch student", "passed": False,
                           "detail": str(exc)}]
        return _finish(options, registry, report, REJECTED, "the int8 export failed its agreement check")
    candidate = Artifact(result.artifact)
    try:
        before = {"golden": score(current, golden), "held_out": score(current, merged.held_out)}
        after = {"golden": score(candidate, golden), "held_out": score(candidate, merged.held_out)}
        checks = [{"check": "int8 export agrees with the PyTorch student", "passed": True,
                   "agreement": result.metrics["student"].get("onnx", {})}] + judge(before, after, options.gate)
        report.update(before=before, after=after, gate=checks,
                      new_intents=sorted(set(candidate.labels()) - set(current.labels())),
                      unlabelled_used=result.metrics.get("unlabelled"))
        if not all(c["passed"] for c in checks):
            registry.discard(candidate.path)
            failed = "; ".join(c["check"] for c in checks if not c["passed"])
            return _finish(options, registry, report, REJECTED, f"kept {current.version}: failed {failed}")
        published = registry.publish(candidate.path, candidate.manifest.get("fingerprint", ""))
    except BaseException:
        registry.discard(candidate.path)
        raise
    write_json(registry.root / STATE, {"last_run_at": started.isoformat(), "version": published.version,
                                       "data_digest": digest})
    report["published"] = published.version
    report["pruned"] = registry.prune(options.keep_versions)
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


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def markdown(report: dict) -> str:
    """The report for people: decision, data added, gate checks, per-intent recall before and after."""
    lines = [f"# Redistillation {report['started_at']}", "", f"**Decision:** {report['decision']}", "",
             f"Current before the run: {report['current']}; harvested since {report['since'] or 'the beginning'}.",
             "", "## Data", ""]
    harvest, data = report["harvest"], report["data"]
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in {**harvest["labelled"],
                                                              "unlabelled messages": harvest["unlabelled"]}.items()]
    lines += [f"- new since the last run: {harvest['new_since_last_run']}",
              f"- training messages after merging: {data['train_messages']}; held-out corrections: "
              f"{data['held_out_corrections']}; unlabelled for the teacher: {data['unlabelled_messages']}",
              f"- added or relabelled: {data['added']}; base data changed: {data['base_data_changed']}"]
    if report.get("new_intents"):
        lines.append(f"- new intents: {', '.join(report['new_intents'])}")
    if report.get("gate"):
        lines += ["", "## Gate", "", "| check | passed | figures |", "|---|---|---|"]
        for check in report["gate"]:
            figures = {k: v for k, v in check.items() if k not in ("check", "passed")}
            lines.append(f"| {check['check']} | {'yes' if check['passed'] else '**no**'} | {figures} |")
    if report.get("after"):
        before, after = report["before"], report["after"]
        lines += ["", "## Accuracy", "", "| set | before | after |", "|---|---|---|",
                  f"| golden ({after['golden']['messages']} messages) | {_pct(before['golden']['accuracy'])} | "
                  f"{_pct(after['golden']['accuracy'])} |",
                  f"| held-out corrections ({after['held_out']['messages']}) | "
                  f"{_pct(before['held_out']['accuracy'])} | {_pct(after['held_out']['accuracy'])} |",
                  "", "## Recall per intent (golden set)", "", "| intent | before | after |", "|---|---|---|"]
        for intent in sorted(set(before["golden"]["per_intent"]) | set(after["golden"]["per_intent"])):
            lines.append(f"| {intent} | {_pct(before['golden']['per_intent'].get(intent))} | "
                         f"{_pct(after['golden']['per_intent'].get(intent))} |")
    return "\n".join(lines) + "\n"
