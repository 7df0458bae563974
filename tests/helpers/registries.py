"""New versions in a registry made from one already there, as a run (or a broken run) would publish them."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.model.artifact import Registry


def publish_copy(registry, broken: bool = False) -> str:
    """Publish the current version's files again as the next version (without labels.json when broken)."""
    registry = Registry(registry)
    staged = registry.stage()
    shutil.copytree(registry.current().path, staged, dirs_exist_ok=True)
    if broken:
        (staged / "labels.json").unlink()
    return registry.publish(staged).version


def add_version(root: Path, broken: bool) -> str:
    """Publish v0001's files again as the next version, without labels.json when broken."""
    registry = Registry(root)
    staged = registry.stage()
    shutil.copytree(root / "v0001", staged, dirs_exist_ok=True)
    if broken:
        (staged / "labels.json").unlink()
    with registry.lock():
        return registry.publish(staged).version
