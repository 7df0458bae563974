"""The registry as the console's models page shows and steers it: every version with its figures, which one is
served and which is the redistillation's drift baseline, the redistillation reports, and the two changes an
admin may make: serve another version (a rollout or a rollback) and pin the baseline. Both take the
registry's lock, as `bot model use` and a redistillation do, so none of them writes over another."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from pydantic import BaseModel, Field

from bot.model.artifact import CURRENT, Artifact, ArtifactError, Registry
from bot.model.redistill_state import STATE, RedistillState

REPORTS = "reports"
_REPORT_NAME = re.compile(r"^redistill-[0-9T+\-.Z]{8,40}$")


class VersionOut(BaseModel):
    version: str
    created_at: str | None
    student_accuracy: float | None
    teacher_accuracy: float | None
    student_macro_f1: float | None
    languages: list[str]
    served: bool = Field(description="The registry's `current`: what every API process serves.")
    baseline: bool = Field(description="The version every redistillation candidate is also compared with (drift).")


class ReportSummary(BaseModel):
    name: str
    started_at: str
    decision: str
    exit_code: int | None
    current_before: str | None


class ReportOut(ReportSummary):
    markdown: str = Field(description="The report for people: the decision and every gate check in words.")
    report: dict = Field(description="The same as JSON (REGISTRY/reports/<name>.json).")


class RegistryOut(BaseModel):
    versions: list[VersionOut] = Field(description="Newest first.")
    reports: list[ReportSummary] = Field(description="Newest first.")


def _version(artifact: Artifact, served: str | None, baseline: str | None) -> VersionOut:
    metrics = artifact.metrics()
    return VersionOut(version=artifact.version, created_at=artifact.manifest.get("created_at"),
                      student_accuracy=metrics.student.accuracy if metrics else None,
                      teacher_accuracy=metrics.teacher.accuracy if metrics else None,
                      student_macro_f1=metrics.student.macro_f1 if metrics else None,
                      languages=metrics.languages if metrics else [],
                      served=artifact.version == served, baseline=artifact.version == baseline)


def _summary(name: str, report: dict) -> ReportSummary:
    return ReportSummary(name=name, started_at=str(report.get("started_at", "")),
                         decision=str(report.get("decision", "")), exit_code=report.get("exit_code"),
                         current_before=report.get("current"))


def _read_report(path: Path) -> dict:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a report")
    return data


def overview(root: Path) -> RegistryOut:
    registry = Registry(root)
    link = root / CURRENT
    served = os.readlink(link) if link.is_symlink() else None
    try:
        baseline = RedistillState.load(root / STATE).baseline
    except (OSError, ValueError):  # unreadable: no baseline shown (the next run pins one)
        baseline = None
    versions = []
    for name in reversed(registry.versions()):
        try:
            versions.append(_version(Artifact(root / name), served, baseline))
        except (ArtifactError, OSError, ValueError):
            continue  # a broken version: `bot model list` shows it; nothing here to serve or compare with
    reports = []
    for path in sorted((root / REPORTS).glob("redistill-*.json"), reverse=True):
        try:
            reports.append(_summary(path.stem, _read_report(path)))
        except (OSError, ValueError):
            continue
    return RegistryOut(versions=versions, reports=reports)


def report(root: Path, name: str) -> ReportOut:
    """One redistillation report; ArtifactError for a name that is not one."""
    folder = root / REPORTS
    if not _REPORT_NAME.match(name) or not (folder / f"{name}.json").is_file():
        raise ArtifactError(f"no redistillation report {name!r}")
    try:
        data = _read_report(folder / f"{name}.json")
        markdown = (folder / f"{name}.md").read_text() if (folder / f"{name}.md").is_file() else ""
        return ReportOut(**_summary(name, data).model_dump(), markdown=markdown, report=data)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"report {name!r} cannot be read: {exc}") from None


def serve(root: Path, version: str) -> None:
    """Make `version` current (ArtifactError for an unknown one, RegistryBusy while a run writes)."""
    registry = Registry(root)
    registry.check_version(version)
    with registry.lock():
        registry.switch(version)


def pin_baseline(root: Path, version: str) -> None:
    """The next redistillations compare their candidate with `version` too (drift)."""
    registry = Registry(root)
    registry.check_version(version)
    with registry.lock():
        state = RedistillState.load(root / STATE)
        state.baseline = version
        state.save(root / STATE)
