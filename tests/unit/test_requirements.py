"""The pinned requirement files of the images (deploy/docker/requirements-*.txt) satisfy what pyproject.toml
asks for, with hashes. (The serving image itself: tests/e2e/test_images.py.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.helpers.constants import ROOT

DOCKER = ROOT / "deploy" / "docker"


def pinned(lock: Path) -> dict[str, str]:
    return {m[1].lower().replace("_", "-"): m[2] for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==(\S+)", lock.read_text(),
                                                                      re.M)}


@pytest.mark.parametrize(("lock", "extras"), [("requirements-serve.txt", ()), ("requirements-train.txt", ("train",))])
def test_the_pinned_requirements_satisfy_the_project(lock, extras):
    """Regenerate with the `uv pip compile` command in deploy/README.md when this fails."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for extra in extras for r in project["optional-dependencies"][extra]]
    versions = pinned(DOCKER / lock)
    for requirement in wanted:
        name = requirement.name.lower().replace("_", "-")
        assert name in versions, f"{lock} pins no {name}"
        assert requirement.specifier.contains(versions[name], prereleases=True), f"{lock}: {name}=={versions[name]}"
    assert ("torch" in versions) == bool(extras)
    assert "--hash=sha256:" in (DOCKER / lock).read_text()
