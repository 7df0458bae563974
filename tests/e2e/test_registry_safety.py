"""A server whose `current` version fails to load starts on the newest older one, says so and counts it, and
loads the repaired version when switched to it (issue 13, section 7, with a real server process). One tiny
`distill run` (seconds) gives the module its distilled version. (The registry's own safety, in-process:
tests/unit/test_registry_safety.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from bot.model.artifact import Registry
from distill.config import load_config
from distill.run_inputs import RunInputs
from tests.helpers.constants import DATA
from tests.helpers.registries import add_version
from tests.helpers.servers import metric, served, server_log
from tests.helpers.tiny import tiny_overrides
from tests.helpers.waiting import poll


@pytest.fixture(scope="module")
def distilled(tmp_path_factory, tiny_teacher_dir, tiny_student_dir, small_data) -> Path:
    """A registry whose v0001 a tiny `distill run` published."""
    from distill.pipeline import run

    train, test = small_data
    root = tmp_path_factory.mktemp("distilled") / "registry"
    run(load_config(None, tiny_overrides(tiny_teacher_dir, tiny_student_dir)),
        RunInputs([train], test=[test], templates=DATA / "templates.yml"), root, tmp_path_factory.mktemp("cache"))
    return root


@pytest.fixture
def tiny_registry(distilled, tmp_path) -> Path:
    """A private copy of the tiny registry's distilled version, and a second one: v0001 and v0002, both good,
    `current` at v0002."""
    copy = tmp_path / "registry"
    copy.mkdir()
    shutil.copytree(distilled / "v0001", copy / "v0001")
    Registry(copy).switch("v0001")
    assert add_version(copy, broken=False) == "v0002"
    return copy


def test_a_server_whose_current_version_fails_to_load_starts_on_the_newest_older_one(tiny_registry, tmp_path):
    """current → v0003, which lacks labels.json; v0004 (newer, rolled back from) is not a candidate: the
    server starts on v0002, says so in its log and counts it. Repaired and switched to again, v0003 is
    loaded."""
    assert add_version(tiny_registry, broken=True) == "v0003"
    assert add_version(tiny_registry, broken=False) == "v0004"
    registry = Registry(tiny_registry)
    registry.switch("v0003")  # an operator rolled back to v0003, which turns out broken
    with served(tiny_registry, f"sqlite:///{tmp_path / 'bot.db'}", {"DISTILBOT_RELOAD_INTERVAL_S": "0.2"}) as (
            url, process):
        assert httpx.get(f"{url}/health", timeout=10).json()["model_version"] == "v0002"
        assert metric(url, "distilbot_model_fallbacks_total") == 1.0
        assert "serving v0002 instead of current v0003" in server_log(process)
        chat = httpx.post(f"{url}/api/chat", json={"message": "how much is shipping"}, timeout=30)
        assert chat.status_code == 200 and chat.json()["model_version"] == "v0002"

        shutil.copy(tiny_registry / "v0001" / "labels.json", tiny_registry / "v0003" / "labels.json")
        registry.switch("v0003")  # the same name again, now repaired
        poll(lambda: httpx.get(f"{url}/health", timeout=10).json()["model_version"] == "v0003", 60, "serving v0003")
        assert metric(url, "distilbot_model_reloads_total", outcome="done") == 1.0
        assert metric(url, "distilbot_model_reloads_total", outcome="failed") is None
