"""The model artifact (one immutable directory per version) and the registry that holds versions.

Shared by `distill` (which writes artifacts) and `bot` (which serves them). Layout of a version:

    encoder/             student encoder, a sentence-transformers directory (safetensors)
    head.safetensors     intent head: weight [n_intents, dim], bias [n_intents]
    labels.json          intent names, in the head's order
    calibration.json     confidence temperature, out-of-scope threshold, clarify margin
    templates.json       answer templates and slot defaults
    templates.faiss      FAISS index of the templates' example questions (student embeddings)
    templates_rows.json  the template id of each index row
    metrics.json         teacher and student figures side by side
    MODEL_CARD.md        the same, for people
    config.json          the resolved distillation config
    manifest.json        format, version, creation time, data fingerprint

The registry is a folder of versions plus a `current` symlink, replaced atomically (rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

FORMAT_VERSION = 1
CURRENT = "current"
_VERSION_RE = re.compile(r"^v(\d{4,})$")


class ArtifactError(Exception):
    """An artifact or registry is missing, incomplete or of an unknown format."""


class RegistryBusy(Exception):
    """Another run holds the registry's lock."""


@dataclass(frozen=True)
class Calibration:
    temperature: float
    oos_threshold: float
    clarify_margin: float
    oos_score: str = "confidence"
    """What oos_threshold applies to: "energy" or "confidence" (artifacts before energy: confidence)."""
    intent_thresholds: dict[str, float] = field(default_factory=dict)
    """Per intent, the calibrated confidence below which its predictions were unreliable on validation."""


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path.parent}: missing {path.name}; is this a model artifact?") from exc


class Artifact:
    """Read access to one published (or staged) version."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest = read_json(self.path / "manifest.json")
        if self.manifest.get("format") != FORMAT_VERSION:
            raise ArtifactError(f"{self.path}: artifact format {self.manifest.get('format')!r}, "
                                f"this code reads format {FORMAT_VERSION}")

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def encoder_dir(self) -> Path:
        return self.path / "encoder"

    def labels(self) -> list[str]:
        return read_json(self.path / "labels.json")

    def calibration(self) -> Calibration:
        return Calibration(**read_json(self.path / "calibration.json"))

    def metrics(self) -> dict:
        path = self.path / "metrics.json"
        return read_json(path) if path.exists() else {}

    @property
    def has_templates(self) -> bool:
        return (self.path / "templates.json").exists()


def resolve(path: str | Path) -> Artifact:
    """An artifact directory, or a registry (then its current version)."""
    path = Path(path)
    if (path / "manifest.json").exists():
        return Artifact(path)
    if (path / CURRENT).exists():
        return Artifact((path / CURRENT).resolve())
    raise ArtifactError(f"{path}: neither a model artifact (no manifest.json) "
                        f"nor a registry with a published version (no '{CURRENT}')")


class Registry:
    """Versions `v0001`, `v0002`, … and a `current` symlink switched in one atomic rename."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted((p.name for p in self.root.iterdir() if _VERSION_RE.match(p.name)),
                      key=lambda name: int(name[1:]))

    def current(self) -> Artifact | None:
        link = self.root / CURRENT
        return Artifact(link.resolve()) if link.exists() else None

    def stage(self) -> Path:
        """A fresh private directory inside the registry to write a version into before publishing."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".staging-{uuid.uuid4().hex}"
        path.mkdir()
        return path

    def publish(self, staged: Path, fingerprint: str = "") -> Artifact:
        """Give a staged directory the next version number and make it current."""
        existing = self.versions()
        version = f"v{(int(existing[-1][1:]) + 1 if existing else 1):04d}"
        write_json(staged / "manifest.json", {
            "format": FORMAT_VERSION,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "fingerprint": fingerprint,
        })
        final = self.root / version
        os.rename(staged, final)
        self.switch(version)
        return Artifact(final)

    def switch(self, version: str) -> None:
        """Point `current` at `version` atomically: readers see the old or the new target, never none."""
        if not (self.root / version / "manifest.json").exists():
            raise ArtifactError(f"{self.root}: no version {version!r}")
        tmp = self.root / f".current-{uuid.uuid4().hex}"
        os.symlink(version, tmp)
        os.replace(tmp, self.root / CURRENT)

    def discard(self, staged: Path) -> None:
        shutil.rmtree(staged, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self):
        """Only one writer (a distillation or redistillation run) at a time; the lock dies with its process,
        so a killed run never leaves the registry locked."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RegistryBusy(f"{self.root}: another run is writing to this registry") from None
            yield

    def clean_staging(self) -> list[str]:
        """Remove what an interrupted run left half-written (call while holding the lock)."""
        left = [p for p in self.root.glob(".staging-*") if p.is_dir()] + list(self.root.glob(".current-*"))
        for path in left:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
        return [p.name for p in left]

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest `keep` versions; never `current` or the version before it (the one a
        rollback goes to)."""
        versions = self.versions()
        current = self.current()
        protected = set(versions[-keep:]) if keep > 0 else set()
        if current is not None:
            protected.add(current.version)
            if current.version in versions and versions.index(current.version) > 0:
                protected.add(versions[versions.index(current.version) - 1])
        removed = [v for v in versions if v not in protected]
        for version in removed:
            shutil.rmtree(self.root / version)
        return removed
