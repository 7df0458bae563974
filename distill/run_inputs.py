"""What a distillation run is made from (data files and config), and the fingerprint that identifies it,
so an unchanged run is recognised before anything heavy is loaded."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from bot.artifact import Artifact, Registry
from distill.config import DistillConfig


@dataclass
class RunInputs:
    train: list[Path]
    valid: list[Path] = field(default_factory=list)
    test: list[Path] = field(default_factory=list)
    templates: Path | None = None
    label_column: str | None = None
    unlabelled: list[Path] = field(default_factory=list)
    """Plain messages, labelled by the teacher's soft outputs for distillation."""


def run_fingerprint(config: DistillConfig, inputs: RunInputs) -> str:
    """A hash of the config and the bytes of every data file."""
    digest = hashlib.sha256(config.model_dump_json().encode())
    for path in [*inputs.train, *inputs.valid, *inputs.test, inputs.templates, *inputs.unlabelled]:
        if path is not None:
            digest.update(str(path).encode() + Path(path).read_bytes())
    digest.update(str(inputs.label_column).encode())
    return digest.hexdigest()[:20]


def up_to_date(registry_dir: Path, fingerprint: str) -> Artifact | None:
    """The current version when it was distilled from exactly this config and data."""
    current = Registry(registry_dir).current()
    if current is not None and current.manifest.get("fingerprint") == fingerprint:
        return current
    return None
