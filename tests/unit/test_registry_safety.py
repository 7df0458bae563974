"""The model registry and start-up under concurrent writers, crashes, broken versions and hostile input
(issue 13, section 7). One tiny `distill run` (seconds) is shared by the tests that need a real artifact. (A real
server starting on a broken version: tests/e2e/test_registry_safety.py; the harvest reading the store only:
tests/helpers/cases/harvest.py.)"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from bot.model.artifact import Registry, RegistryBusy, write_json
from distill.config import load_config
from distill.run_inputs import RunInputs, training_key
from tests.helpers.constants import DATA, ROOT
from tests.helpers.databases import migrated_to
from tests.helpers.registries import add_version
from tests.helpers.tiny import tiny_overrides
from tests.helpers.waiting import poll

STAGER = """
import sys
from bot.model.artifact import Registry, write_json
registry = Registry(sys.argv[1])
staged = registry.stage()
write_json(staged / "labels.json", ["x"])
print(staged, flush=True)
sys.stdin.readline()  # a run at work: it owns its staging folder until it publishes
if sys.argv[2] == "publish":
    with registry.lock(wait=True):
        print(registry.publish(staged).version, flush=True)
"""


def start_stager(root: Path, then: str) -> tuple[subprocess.Popen, Path]:
    """Another process that stages a version and waits for a line on stdin (then publishes, or exits)."""
    process = subprocess.Popen([sys.executable, "-c", STAGER, str(root), then], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    return process, Path(process.stdout.readline().strip())



class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def tiny_config(tiny_teacher_dir, tiny_student_dir, small_data):
    train, test = small_data
    return (load_config(None, tiny_overrides(tiny_teacher_dir, tiny_student_dir)),
            RunInputs([train], test=[test], templates=DATA / "templates.yml"))


@pytest.fixture(scope="module")
def contended_run(tmp_path_factory, tiny_config):
    """A tiny `distill run` that finishes while another writer holds the registry's lock, beside a staging
    folder a killed run left and one a live run (another process) is writing; every os.replace and fsync
    of the run is recorded."""
    from distill.pipeline import run

    config, inputs = tiny_config
    root = tmp_path_factory.mktemp("contended") / "registry"
    registry = Registry(root)
    dead, dead_folder = start_stager(root, "exit")
    dead.kill()
    dead.wait()
    live, live_folder = start_stager(root, "publish")
    replaced, synced = [], set()
    real_replace, real_fsync = os.replace, os.fsync

    def recording_replace(src, dst, *args, **kwargs):
        replaced.append((Path(src), Path(dst)))
        return real_replace(src, dst, *args, **kwargs)

    def recording_fsync(fd):
        synced.add(os.fstat(fd).st_ino)
        return real_fsync(fd)

    records, logger = Records(), logging.getLogger("distilbot.registry")
    logger.addHandler(records)
    outcome: dict = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", recording_replace)
        patch.setattr(os, "fsync", recording_fsync)
        with registry.lock():  # a redistillation (or a rollback) is writing
            worker = threading.Thread(target=lambda: outcome.update(
                result=run(config, inputs, root, tmp_path_factory.mktemp("cache"))))
            worker.start()
            poll(lambda: records.messages or not worker.is_alive(), 300, "the run to finish or wait for the lock")
            outcome["waited"] = list(records.messages)
            outcome["versions_while_locked"] = registry.versions()
        worker.join(300)
    logger.removeHandler(records)
    outcome["live_folder_after_run"] = live_folder.is_dir()
    outcome["dead_folder_after_run"] = dead_folder.exists()
    live.stdin.write("go\n")
    live.stdin.flush()
    outcome["live_published"] = live.stdout.readline().strip()
    live.wait(30)
    return root, outcome, replaced, synced


# ---------------------------------------------------------------- 1. one writer at a time, own staging folders


def test_distill_run_publishes_under_the_registrys_lock(contended_run):
    root, outcome, _, _ = contended_run
    assert outcome["waited"] and "waiting" in outcome["waited"][0]  # it did not publish past the lock
    assert outcome["versions_while_locked"] == []
    assert outcome["result"].artifact == root / "v0001" and os.readlink(root / "current") == "v0002"
    # the live run published after it, numbered after it: no version number was handed out twice
    assert outcome["live_published"] == "v0002" and Registry(root).versions() == ["v0001", "v0002"]


def test_a_live_runs_staging_folder_survives_another_runs_cleanup(contended_run):
    _, outcome, _, _ = contended_run
    assert outcome["live_folder_after_run"], "the distill run removed a concurrent run's staging folder"
    assert not outcome["dead_folder_after_run"], "what a killed run left was not cleaned up"


def test_cleanup_removes_only_staging_folders_whose_owner_is_gone(tmp_path):
    """What `redistill` and `distill run` call under the lock, with a live run in another process, a killed
    one, and one of this very process."""
    registry = Registry(tmp_path / "registry")
    live, live_folder = start_stager(registry.root, "exit")
    dead, dead_folder = start_stager(registry.root, "exit")
    dead.kill()
    dead.wait()
    own = registry.stage()
    try:
        with registry.lock():
            removed = registry.clean_staging()
        assert removed == [dead_folder.name]
        assert live_folder.is_dir() and own.is_dir() and not dead_folder.exists()
    finally:
        live.communicate("go\n", timeout=30)
    with registry.lock():  # its owner gone, the next cleanup takes it
        assert registry.clean_staging() == [live_folder.name]
    write_json(own / "labels.json", ["x"])
    assert registry.publish(own).version == "v0001"
    assert sorted(p.name for p in registry.root.iterdir()) == [".lock", "current", "v0001"]


def test_a_second_run_of_the_same_data_and_config_leaves_the_first_ones_folder_alone(tmp_path, tiny_config):
    from distill.pipeline import run

    config, inputs = tiny_config
    runs = tmp_path / "registry" / ".runs"
    folder = runs / training_key(config, inputs)  # the run folder: what changes training
    folder.mkdir(parents=True)
    (folder / "student.ckpt").write_text("the first run's checkpoint")
    with open(runs / f"{folder.name}.lock", "a") as first:  # the first run is at work
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RegistryBusy, match="same data and config"):
            run(config, inputs, tmp_path / "registry", tmp_path / "cache")
    assert (folder / "student.ckpt").read_text() == "the first run's checkpoint"


# ---------------------------------------------------------------- 2. every state and metadata file atomically


def test_every_metadata_file_of_a_version_is_written_atomically(contended_run):
    """Each one replaced a temporary file of the same folder that was flushed to disk first (the published
    file is that very inode), and `current` is replaced the same way, its folder synced after."""
    root, _, replaced, synced = contended_run
    into = {(dst.parent.name.startswith(".staging-"), dst.name): src for src, dst in replaced
            if src.parent == dst.parent}
    for name in ["manifest.json", "labels.json", "config.json", "calibration.json", "metrics.json", "MODEL_CARD.md",
                 "templates.json", "templates_rows.json"]:
        assert (True, name) in into, f"{name} was not written through a temporary file"
        assert (root / "v0001" / name).stat().st_ino in synced, f"{name} was not flushed before its rename"
    assert any(src.name.startswith(".current-") and dst == root / "current" for src, dst in replaced)
    assert root.stat().st_ino in synced
    assert not [p for p in (root / "v0001").rglob("*.tmp")] and not list(root.glob(".*.tmp"))


def test_an_interrupted_write_leaves_the_state_and_the_report_whole(tmp_path, monkeypatch):
    """The process dies at the last moment of a rewrite (before the rename): readers still find the old
    state file whole, and no report with half its text."""
    from distill.redistill import STATE, Options, RedistillState, _finish

    registry = Registry(tmp_path / "registry")
    registry.root.mkdir()
    RedistillState(harvested_until="2025-01-01T00:00:00+00:00", published="v0001").save(registry.root / STATE)
    before = (registry.root / STATE).read_text()

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        RedistillState(harvested_until="2025-02-01T00:00:00+00:00", published="v0002").save(registry.root / STATE)
    options = Options(registry=registry.root, db_url="sqlite://", config=None, train=[], golden=Path("x"),
                      templates=None, work_dir=tmp_path / "work")
    report = {"started_at": "2025-02-01T00:00:00+00:00", "current": "v0001", "baseline": "v0001", "since": None,
              "harvest": {"labelled": {}, "thumbs_up_not_used": 0, "unlabelled": 0, "dropped": {},
                          "new_since_last_run": {}},
              "data": {"train_messages": 0, "held_out_corrections": 0, "held_out_confirmations": 0,
                       "unlabelled_messages": 0, "added": {}, "waiting_for_admin": [], "base_data_changed": False}}
    with pytest.raises(KeyboardInterrupt):
        _finish(options, registry, report, 4, "nothing new to learn")
    monkeypatch.undo()
    assert (registry.root / STATE).read_text() == before
    assert not list((registry.root / "reports").iterdir())  # no partial report, no temporary file
    assert sorted(p.name for p in registry.root.iterdir()) == ["redistill_state.json", "reports"]


# ---------------------------------------------------------------- 3. start-up and reload with broken versions


@pytest.fixture
def tiny_registry(contended_run, tmp_path) -> Path:
    """A private copy of the tiny registry's distilled version, and a second one: v0001 and v0002, both good,
    `current` at v0002."""
    copy = tmp_path / "registry"
    copy.mkdir()
    shutil.copytree(contended_run[0] / "v0001", copy / "v0001")
    Registry(copy).switch("v0001")
    assert add_version(copy, broken=False) == "v0002"
    return copy


def reloads(outcome: str) -> float:
    return REGISTRY.get_sample_value("distilbot_model_reloads_total", {"outcome": outcome}) or 0.0


def test_a_failed_hot_reload_is_retried_when_current_changes_again(tiny_registry):
    from bot.model.reload import ModelHolder

    holder = ModelHolder(tiny_registry, "auto")
    check = lambda: asyncio.run(holder.check())  # noqa: E731
    assert holder.model.version == "v0002" and check() is False
    failed, done = reloads("failed"), reloads("done")

    assert add_version(tiny_registry, broken=True) == "v0003"
    assert check() is False and holder.model.version == "v0002" and reloads("failed") == failed + 1
    assert check() is False and reloads("failed") == failed + 1  # not retried on every poll

    shutil.copy(tiny_registry / "v0001" / "labels.json", tiny_registry / "v0003" / "labels.json")
    Registry(tiny_registry).switch("v0003")  # repaired: switched to again, under the same name
    assert check() is True and holder.model.version == "v0003" and reloads("done") == done + 1

    (tiny_registry / "v0003" / "labels.json").unlink()
    Registry(tiny_registry).switch("v0001")  # rolled back, and then forward to a version that is broken now
    assert check() is True and holder.model.version == "v0001"
    Registry(tiny_registry).switch("v0003")
    assert check() is False and holder.model.version == "v0001" and reloads("failed") == failed + 2
    Registry(tiny_registry).switch("v0001")  # back to the one served: nothing to load
    assert check() is False and holder.model.version == "v0001" and reloads("done") == done + 2


def test_a_check_that_finds_a_load_in_flight_returns_once_that_version_is_served(tiny_registry):
    """The console's "Serve" calls check() while the periodic watch may be loading the same switch: it must not
    answer before the version is served."""
    from bot.model.reload import ModelHolder

    holder = ModelHolder(tiny_registry, "auto")
    Registry(tiny_registry).switch("v0001")

    async def watch_then_serve():
        watching = asyncio.create_task(holder.check())
        await asyncio.sleep(0)  # the watch has read the new link and is loading v0001 in a worker thread
        serving = await holder.check()
        return serving, holder.model.version, await watching

    assert asyncio.run(watch_then_serve()) == (False, "v0001", True)

# ---------------------------------------------------------------- 4. `bot model use` takes version names only


def _state(root: Path) -> dict:
    return {p.name: (os.readlink(p) if p.is_symlink() else p.stat().st_mtime_ns) for p in root.iterdir()}


@pytest.mark.parametrize("name", ["../elsewhere", "current", "ABSOLUTE", "v0009", "v1", "v0001/", "./v0001",
                                  ".staging-x", ""])
def test_model_use_refuses_anything_but_a_published_version_name(tmp_path, name):
    from bot.cli import app

    registry = Registry(tmp_path / "registry")
    for marker in ("a", "b"):
        staged = registry.stage()
        write_json(staged / "labels.json", [marker])
        registry.publish(staged)
    (registry.root / ".staging-x").mkdir()
    write_json(registry.root / ".staging-x" / "manifest.json", {"format": 1, "version": "x"})
    elsewhere = tmp_path / "elsewhere"  # what `../elsewhere` names: a folder that looks like a version
    shutil.copytree(registry.root / "v0001", elsewhere)
    name = str(registry.root / "v0001") if name == "ABSOLUTE" else name
    before = _state(registry.root)
    result = CliRunner().invoke(app, ["model", "use", name, "--registry", str(registry.root)])
    assert result.exit_code == 2, result.output
    assert f"error: {registry.root}: no version {name!r} (versions are named like v0007; published here: " \
           "v0001, v0002)" in result.output
    assert _state(registry.root) == before and os.readlink(registry.root / "current") == "v0002"


def test_model_use_rolls_back_from_a_current_version_that_does_not_load(tmp_path):
    from bot.cli import app

    registry = Registry(tmp_path / "registry")
    for _ in range(2):
        staged = registry.stage()
        write_json(staged / "labels.json", ["x"])
        registry.publish(staged)
    (registry.root / "v0002" / "manifest.json").unlink()  # current is broken
    result = CliRunner().invoke(app, ["model", "use", "v0001", "--registry", str(registry.root)])
    assert result.exit_code == 0, result.output
    assert "current: v0001 (was v0002)" in result.output and os.readlink(registry.root / "current") == "v0001"


# ---------------------------------------------------------------- 5. the harvest only reads, and never migrates


def test_the_harvest_does_not_create_a_missing_sqlite_store(tmp_path):
    from distill.harvest import StoreError, collect

    with pytest.raises(StoreError, match="no such SQLite database"):
        collect(f"sqlite:///{tmp_path / 'typo.db'}", None)
    assert not list(tmp_path.iterdir())


def test_redistill_on_an_unmigrated_store_exits_2_and_leaves_it_be(tiny_registry, tmp_path):
    from distill.cli import app

    db = tmp_path / "old.db"
    migrated_to(f"sqlite:///{db}", "0001")
    before = db.read_bytes()
    result = CliRunner().invoke(app, ["redistill", "--registry", str(tiny_registry), "--db", f"sqlite:///{db}",
                                      "--dry-run", "--train", str(DATA / "train.jsonl"),
                                      "--golden", str(DATA / "test.jsonl"), "--templates", str(DATA / "templates.yml")])
    assert result.exit_code == 2, result.output
    assert "schema is at revision 0001" in result.output and db.read_bytes() == before
