"""The model registry (bot/model/artifact.py): publishing versions, switching `current` atomically, the lock,
leftovers of killed runs, retention."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.model.artifact import ArtifactError, Registry, RegistryBusy, resolve, write_json
from tests.helpers.constants import ROOT


def _fake_version(registry: Registry, marker: str):
    staged = registry.stage()
    write_json(staged / "labels.json", [marker])
    return registry.publish(staged, fingerprint=marker)


def test_registry_publishes_versions_and_switches_current_atomically(tmp_path):
    registry = Registry(tmp_path / "reg")
    assert registry.current() is None
    with pytest.raises(ArtifactError, match="neither a model artifact"):
        resolve(tmp_path / "reg")
    first = _fake_version(registry, "a")
    second = _fake_version(registry, "b")
    assert (first.version, second.version) == ("v0001", "v0002")
    assert registry.versions() == ["v0001", "v0002"]
    assert resolve(tmp_path / "reg").labels() == ["b"]
    assert os.readlink(tmp_path / "reg" / "current") == "v0002"
    registry.switch("v0001")
    assert registry.current().version == "v0001" and registry.current().manifest["fingerprint"] == "a"
    assert not [p for p in (tmp_path / "reg").iterdir() if p.name.startswith(".")]  # no staging left over
    with pytest.raises(ArtifactError, match="no version 'v0009'"):
        registry.switch("v0009")


def test_registry_lock_leftovers_and_retention(tmp_path):
    registry = Registry(tmp_path / "registry")
    for _ in range(6):
        staged = registry.stage()
        (staged / "labels.json").write_text("[]")
        registry.publish(staged)
    registry.switch("v0003")  # an operator rolled back
    subprocess.run([sys.executable, "-c", "import sys; from bot.model.artifact import Registry; "
                    "Registry(sys.argv[1]).stage()", str(registry.root)], cwd=ROOT, check=True)  # a run killed half-way
    with registry.lock():
        with pytest.raises(RegistryBusy), registry.lock():
            pass
        assert len(registry.clean_staging()) == 1
        # kept: the two newest, current (v0003), the one before it (where a rollback goes) and the drift baseline
        assert registry.prune(keep=2, also_keep=frozenset({"v0004"})) == ["v0001"]
    assert registry.versions() == ["v0002", "v0003", "v0004", "v0005", "v0006"]
