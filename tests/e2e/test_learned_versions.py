"""What the bot learned stays served: a version with changed answers is answered with them right after a hot
reload (on every replica, with the action threads already warm), and `make demo` again keeps a version that
was redistilled from the demo data instead of distilling it afresh."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.model.artifact import Registry
from distill.config import load_config
from distill.run_inputs import RunInputs, run_fingerprint
from tests.helpers.clients import Visitor
from tests.helpers.constants import ROOT
from tests.helpers.servers import UNLIMITED, compose_api_env, served

EDITED = "Shipping is now a flat €2 to every EU country, whatever you order."


def _publish_copy(registry: Path, edit_templates=None, descends_from: str | None = None) -> str:
    """A new version holding the current one's model, its answers edited, published as a run would."""
    store = Registry(registry)
    current = store.current()
    with store.lock():
        staged = store.stage()
        for item in current.path.iterdir():
            if item.name != "manifest.json":
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, staged / item.name)
        if edit_templates:
            book = json.loads((staged / "templates.json").read_text())
            edit_templates(book)
            (staged / "templates.json").write_text(json.dumps(book))
        return store.publish(staged, f"edited-{time.time_ns()}", descends_from).version


def _poll(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not {what} within {seconds} s")


def test_an_edited_answer_is_served_after_a_hot_reload_on_two_warm_replicas(demo_registry, tmp_path, pg_url,
                                                                             redis_url):
    """The bug it guards: after a reload, the answer action read the previous version's templates in the
    threads that had already run actions. Without the warm-up traffic it hides."""
    registry = tmp_path / "registry"
    shutil.copytree(demo_registry, registry, symlinks=True)

    def edit(book):
        template = next(t for t in book["templates"] if t["id"] == "shipping_cost_rates")
        template["text"] = EDITED

    edited = _publish_copy(registry, edit)
    Registry(registry).switch("v0001")
    env = {**compose_api_env(), **UNLIMITED, "DISTILBOT_REDIS_URL": redis_url, "DISTILBOT_RELOAD_INTERVAL_S": "0.5"}
    with served(registry, pg_url, env) as (url_a, _), served(registry, pg_url, env) as (url_b, _):
        for url in (url_a, url_b):  # the action threads exist before the reload
            for n in range(12):
                reply = Visitor(url).say(["how much is shipping", "hello", "how do I return an item"][n % 3])
                assert reply["model_version"] == "v0001"
            assert EDITED not in Visitor(url).say("how much is shipping")["replies"][0]["text"]
        used = subprocess.run([sys.executable, "-m", "bot", "model", "use", edited, "--registry", str(registry)],
                              cwd=ROOT, capture_output=True, text=True)
        assert used.returncode == 0, used.stderr
        for url in (url_a, url_b):
            _poll(lambda u=url: httpx.get(f"{u}/health", timeout=10).json()["model_version"] == edited, 30,
                  f"serving {edited} on {url}")
            for _ in range(3):  # a new and a continuing conversation, on whichever thread runs the action
                visitor = Visitor(url)
                visitor.say("hello")
                reply = visitor.say("how much is shipping")
                assert reply["model_version"] == edited and reply["template"] == "shipping_cost_rates"
                assert reply["replies"][0]["text"] == EDITED


def _make_demo_distill_command(registry: Path) -> list[str]:
    """The `distill run` line `make demo` runs, read from the Makefile itself (make -n prints it)."""
    printed = subprocess.run(["make", "-n", "demo", f"REGISTRY={registry}"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    line = next(line for line in printed.replace("\\\n", " ").splitlines() if "-m distill run" in line)
    command = shlex.split(line)
    return [sys.executable, *command[command.index("-m"):]]


def test_make_demo_keeps_a_version_redistilled_from_the_demo_data(demo_registry, tmp_path, monkeypatch):
    """The demo's version learned from agents (a redistillation published it, descending from the demo's own
    run): `make demo` again serves it, instead of distilling the data afresh and discarding what it learned."""
    monkeypatch.chdir(ROOT)  # the Makefile's paths are relative to the repository, and part of the fingerprint
    registry = tmp_path / "registry"
    shutil.copytree(demo_registry, registry, symlinks=True)
    command = _make_demo_distill_command(registry)
    args = command[command.index("run") + 1:]
    value = lambda flag: args[args.index(flag) + 1]  # noqa: E731
    demo_run = run_fingerprint(load_config(Path(value("--config")), []),
                               RunInputs([Path(value("--train"))], test=[Path(value("--test"))],
                                         templates=Path(value("--templates"))))
    learned = _publish_copy(registry, descends_from=demo_run)  # what a redistillation publishes
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{learned} was redistilled from this exact data and config" in again.stdout
    assert Registry(registry).current().version == learned and Registry(registry).versions() == ["v0001", learned]
