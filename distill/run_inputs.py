"""What a distillation run is made from (data files and config), and the fingerprint that identifies it,
so an unchanged run is recognised before anything heavy is loaded."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from bot.model.artifact import Artifact, Registry
from distill.config import NOT_TRAINING, DistillConfig
from distill.training_set import UnlabelledRules


@dataclass
class RunInputs:
    train: list[Path]
    valid: list[Path] = field(default_factory=list)
    test: list[Path] = field(default_factory=list)
    templates: Path | None = None
    label_column: str | None = None
    unlabelled: list[Path] = field(default_factory=list)
    """Plain messages, labelled by the teacher's soft outputs for distillation."""
    unlabelled_rules: UnlabelledRules | None = None
    """Which unlabelled messages the teacher's labels may be used for (redistillation's guard against visitors
    steering the model); None: every one the teacher is at least `unlabelled_min_confidence` sure of."""
    unlabelled_student: dict[str, str] = field(default_factory=dict)
    """The current student's intent for each unlabelled message (the rules may require agreement)."""


def run_fingerprint(config: DistillConfig, inputs: RunInputs) -> str:
    """A hash of the config and the bytes of every data file."""
    digest = hashlib.sha256(config.model_dump_json().encode())
    for path in [*inputs.train, *inputs.valid, *inputs.test, inputs.templates, *inputs.unlabelled]:
        if path is not None:
            digest.update(str(path).encode() + Path(path).read_bytes())
    digest.update(str(inputs.label_column).encode())
    return digest.hexdigest()[:20]


def training_key(config: DistillConfig, inputs: RunInputs) -> str:
    """A hash of what changes the trained models: the config less its export, calibration and evaluation keys,
    and the files training reads (the test files only where they keep unlabelled messages out of training)."""
    digest = hashlib.sha256(config.model_dump_json(exclude=set(NOT_TRAINING)).encode())
    for path in [*inputs.train, *inputs.valid, *inputs.unlabelled, *(inputs.test if inputs.unlabelled else [])]:
        digest.update(str(path).encode() + Path(path).read_bytes())
    digest.update(repr((inputs.label_column, inputs.unlabelled_rules, sorted(inputs.unlabelled_student.items())))
                  .encode())
    return digest.hexdigest()[:20]


def up_to_date(registry_dir: Path, fingerprint: str) -> Artifact | None:
    """The current version when it was distilled from exactly this config and data, or redistilled from a
    version that was (it holds that plus what agents taught it since: distilling afresh would discard it)."""
    current = Registry(registry_dir).current()
    if current is not None and fingerprint in (current.manifest.get("fingerprint"),
                                               current.manifest.get("descends_from")):
        return current
    return None


def why_up_to_date(current: Artifact, fingerprint: str) -> str:
    """What a rerun that has nothing to do says (see up_to_date)."""
    how = ("was distilled from this exact data and config" if current.manifest.get("fingerprint") == fingerprint
           else "was redistilled from this exact data and config and has learned from agents since")
    return f"{current.version} {how}; nothing to do (--force to distil afresh)"
