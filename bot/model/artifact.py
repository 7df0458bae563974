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

The registry is a folder of versions plus a `current` symlink, replaced atomically (rename). Every file
written here is written whole or not at all (`write_atomic`), so a crash never leaves a half-written file
behind a name a reader trusts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

from pydantic import ValidationError

from bot.model.reports import Calibration, Metrics, Report

FORMAT_VERSION = 1
CURRENT = "current"
_VERSION_RE = re.compile(r"^v(\d{4,})$")
_OWNER = ".owner"
log = logging.getLogger("distilbot.registry")
R = TypeVar("R", bound=Report)


class ArtifactError(Exception):
    """An artifact or registry is missing, incomplete or of an unknown format."""


class RegistryBusy(Exception):
    """Another run holds the registry's lock."""


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Replace `path` with `data` so that readers, and the file system after a crash, see the old content or
    the new, never a part: a temporary file in the same folder, flushed to disk, renamed over `path`, and the
    rename itself made durable. (Created with the usual permissions: 0666 less the umask.)"""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable (where the file system can: some refuse EINVAL)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file under `root` (a staged version) to disk before it is published."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def try_lock(path: Path, wait: bool = False) -> IO | None:
    """An exclusive lock on the file `path`, held as long as the returned handle is open (and so never longer
    than its process lives); None when someone else holds it and `wait` is false. Two handles in one process
    exclude each other too (flock locks belong to the open file)."""
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        handle.close()
        return None
    return handle


_owned: dict[Path, IO] = {}
"""The staging folders this process writes into, each with the handle that holds its owner lock."""


def _release(staged: Path) -> None:
    handle = _owned.pop(Path(staged), None)
    if handle is not None:
        Path(f"{staged}{_OWNER}").unlink(missing_ok=True)
        handle.close()


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path.parent}: missing {path.name}; is this a model artifact?") from exc


def read_report(path: Path, kind: type[R]) -> R:
    """A report file (calibration.json, metrics.json) as its model; one that does not fit is an ArtifactError."""
    try:
        return kind.model_validate(read_json(path))
    except ValidationError as exc:
        raise ArtifactError(f"{path}: not a valid {path.name}: {exc}") from exc


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
        return read_report(self.path / "calibration.json", Calibration)

    def metrics(self) -> Metrics | None:
        """None for a version published without metrics.json."""
        path = self.path / "metrics.json"
        return read_report(path, Metrics) if path.exists() else None

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

    def check_version(self, version: str) -> str:
        """`version` when it names a published version of this registry (a folder `v0007` with a manifest);
        anything else (`current`, `../x`, a path, an unknown name) is an ArtifactError."""
        folder = self.root / version
        if (not _VERSION_RE.match(version) or folder.is_symlink() or not folder.is_dir()
                or not (folder / "manifest.json").is_file()):
            known = ", ".join(self.versions()) or "none"
            raise ArtifactError(f"{self.root}: no version {version!r} (versions are named like v0007; "
                                f"published here: {known})")
        return version

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted((p.name for p in self.root.iterdir() if _VERSION_RE.match(p.name)),
                      key=lambda name: int(name[1:]))

    def current(self) -> Artifact | None:
        link = self.root / CURRENT
        return Artifact(link.resolve()) if link.exists() else None

    def stage(self) -> Path:
        """A fresh private directory inside the registry to write a version into before publishing. It
        belongs to this process until published or discarded: a lock beside it (`.staging-….owner`), held
        while the process lives, keeps other runs' clean_staging away from it."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".staging-{uuid.uuid4().hex}"
        handle = try_lock(Path(f"{path}{_OWNER}"))  # before the folder exists: never seen unowned
        assert handle is not None, "a fresh uuid-named lock file has no other holder"
        _owned[path] = handle
        path.mkdir()
        return path

    def publish(self, staged: Path, fingerprint: str = "", descends_from: str | None = None) -> Artifact:
        """Give a staged directory the next version number and make it current (call while holding the
        lock: the number is only unique among writers that take it). `descends_from` is the fingerprint of
        the `distill run` a redistilled version grew from, so that run, repeated, keeps it (run_inputs)."""
        existing = self.versions()
        version = f"v{(int(existing[-1][1:]) + 1 if existing else 1):04d}"
        manifest = {"format": FORMAT_VERSION, "version": version,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "fingerprint": fingerprint}
        write_json(staged / "manifest.json", manifest | ({"descends_from": descends_from} if descends_from else {}))
        _fsync_tree(staged)  # every file on disk before a name points at them
        final = self.root / version
        os.rename(staged, final)
        _release(staged)
        self.switch(version)
        return Artifact(final)

    def switch(self, version: str) -> None:
        """Point `current` at `version` atomically: readers see the old or the new target, never none."""
        self.check_version(version)
        tmp = self.root / f".current-{uuid.uuid4().hex}"
        os.symlink(version, tmp)
        os.replace(tmp, self.root / CURRENT)
        _fsync_dir(self.root)

    def discard(self, staged: Path) -> None:
        shutil.rmtree(staged, ignore_errors=True)
        _release(staged)

    @contextlib.contextmanager
    def lock(self, wait: bool = False):
        """Only one writer (a distillation or redistillation run, a rollback) at a time; the lock dies with
        its process, so a killed run never leaves the registry locked. Busy: RegistryBusy, or with `wait`,
        wait for it (a finished `distill run` would rather publish late than throw its training away)."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = try_lock(self.root / ".lock")
        if handle is None and wait:
            log.warning("%s: another run holds the registry's lock; waiting for it to finish", self.root)
            handle = try_lock(self.root / ".lock", wait=True)
        if handle is None:
            raise RegistryBusy(f"{self.root}: another run is writing to this registry")
        with handle:
            yield

    def clean_staging(self) -> list[str]:
        """Remove what interrupted runs left half-written: staging folders whose owner is gone (a live
        run's, locked by its owner, stays), temporary links and files (call while holding the lock)."""
        removed = []
        folders = [p for p in self.root.glob(".staging-*") if p.is_dir()]
        orphans = [p for p in self.root.glob(f".staging-*{_OWNER}") if not Path(str(p)[:-len(_OWNER)]).exists()]
        for path in sorted(folders + orphans):
            owner_file = path if path in orphans else Path(f"{path}{_OWNER}")
            owner = try_lock(owner_file)
            if owner is None:
                continue  # a run in progress owns it
            with owner:
                if path.is_dir():
                    shutil.rmtree(path)
                    removed.append(path.name)
                owner_file.unlink(missing_ok=True)
        for path in [*self.root.glob(".current-*"), *self.root.glob(".*.tmp")]:
            path.unlink(missing_ok=True)
            removed.append(path.name)
        return removed

    def prune(self, keep: int, also_keep: frozenset[str] = frozenset()) -> list[str]:
        """Delete all but the newest `keep` versions and `also_keep` (e.g. the redistillation's pinned
        baseline); never `current` or the version before it (the one a rollback goes to)."""
        versions = self.versions()
        current = self.current()
        protected = (set(versions[-keep:]) if keep > 0 else set()) | set(also_keep)
        if current is not None:
            protected.add(current.version)
            if current.version in versions and versions.index(current.version) > 0:
                protected.add(versions[versions.index(current.version) - 1])
        removed = [v for v in versions if v not in protected]
        for version in removed:
            shutil.rmtree(self.root / version)
        return removed
