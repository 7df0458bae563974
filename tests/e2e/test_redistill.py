"""Redistillation: the bot learns from its agents' corrections behind a quality gate, with no downtime.

These run the real command (`python -m distill redistill`) with the real teacher and student on a copy of
the demo registry and a real SQLite store filled through the real API. (The registry's lock and retention:
tests/unit/test_artifact.py; the batches' retention: tests/unit/test_redistill.py; merging and harvesting:
tests/unit/test_training_set.py, tests/unit/test_harvest.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.infra.store import Conversation, Message, make_engine, make_sessionmaker
from bot.model.artifact import Artifact, Registry
from bot.model.served_model import ServedModel
from distill.gate import GateSettings
from tests.helpers.clients import Visitor, login
from tests.helpers.constants import DATA, ROOT
from tests.helpers.servers import UNLIMITED, add_agents, client_limits, served

# A customer base that starts writing in German: the demo bot (English data) gets these wrong.
GERMAN = {
    "order_status": ["wo ist meine Bestellung", "wo bleibt mein Paket", "wann kommt meine Lieferung an",
                     "meine Bestellung ist noch nicht da", "ich warte immer noch auf mein Paket",
                     "bitte den Status meiner Bestellung", "ist mein Paket schon unterwegs",
                     "wann wird meine Bestellung geliefert", "mein Paket ist noch nicht angekommen",
                     "wo ist meine Sendung"],
    "refund_status": ["wann bekomme ich mein Geld zurück", "wo bleibt meine Rückerstattung",
                      "ich habe mein Geld noch nicht zurückbekommen", "wann wird mir der Betrag erstattet",
                      "Rückerstattung noch nicht erhalten", "wie lange dauert die Erstattung",
                      "mein Geld ist noch nicht zurück", "wann kommt die Gutschrift",
                      "habt ihr mein Geld schon zurücküberwiesen", "Status meiner Rückerstattung"],
}
GERMAN_PARAPHRASES = {"order_status": ["wo ist denn meine Bestellung geblieben", "mein Paket ist nicht da"],
                      "refund_status": ["wann bekomme ich die Rückerstattung", "mein Geld ist immer noch nicht da"]}
GIFT_WRAP = ["can you gift wrap my order", "do you offer gift wrapping", "is gift wrapping available",
             "I want this wrapped as a present", "can you wrap it as a gift please", "gift wrap option?",
             "how much is gift wrapping", "could the parcel be gift wrapped", "add gift wrapping to my order",
             "can I get it wrapped for a birthday", "do you wrap presents", "gift wrapping for my order please"]


# 99% int8 agreement (the default 99.5% allows one disagreement in the 377 golden messages): these tests
# are about learning, and should not hinge on one borderline message of the export check.
AGREEMENT = ("--set", "onnx_min_agreement=0.99")
# The demo's golden set has 377 messages: at 95% confidence it can rule out a loss of about 3 points, not the
# default 0.75 (calibrated on 3,080 messages; tests/bench/gate_calibration.py), so the demo's gate is this one.
DEMO_GATE = ("--tolerance", "0.03", "--ece-tolerance", "0.03")


def redistill_cli(registry: Path, db_url: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command; the harvested visitor text goes to a work folder beside the registry."""
    return subprocess.run([sys.executable, "-m", "distill", "redistill", "--registry", str(registry), "--db", db_url,
                           "--work-dir", str(registry.parent / "redistill-work"), *extra], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=1500)


# ---------------------------------------------------------------- the command's checks (seconds)

def test_a_drift_baseline_must_be_a_published_version(live_registry, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    make_engine(db_url).dispose()
    refused = redistill_cli(live_registry, db_url, "--baseline", "../v0001", "--dry-run")
    assert refused.returncode == 2 and "no version '../v0001'" in refused.stderr, refused.stderr
    dry = redistill_cli(live_registry, db_url, "--baseline", "v0001", "--dry-run")
    assert dry.returncode == 0 and "dry run" in dry.stdout, dry.stderr


# ---------------------------------------------------------------- real runs (minutes)

@pytest.fixture
def live_registry(demo_registry, tmp_path) -> Path:
    """A private copy of the demo registry (the runs below publish into it)."""
    copy = tmp_path / "registry"
    shutil.copytree(demo_registry, copy, symlinks=True)
    return copy


def _label_through_the_api(url: str, phrasings: dict[str, list[str]]) -> None:
    """Visitors write the phrasings; Alice corrects (or confirms) each one's intent in the agent API."""
    alice = login(url, "alice")
    for intent, texts in phrasings.items():
        for text in texts:
            visitor = Visitor(url)
            reply = visitor.say(text)
            transcript = alice.get(f"/conversations/{visitor.session}").json()["transcript"]
            message = next(m for m in transcript if m["role"] == "user" and m["text"] == text)
            assert reply["session_id"] == visitor.session
            assert alice.put(f"/messages/{message['id']}/intent", json={"intent": intent}).status_code == 200


async def _chat_load(url: str, stop: asyncio.Event, results: list) -> None:
    """Visitors chatting until told to stop: (status, model version) of every reply."""
    async def visitor(client, n):
        session, token = None, None
        while not stop.is_set():
            body = {"message": ["where is my order", "how much is shipping", "hello"][n % 3]}
            headers = {}
            if session:
                body["session_id"], headers["Authorization"] = session, f"Bearer {token}"
            response = await client.post("/api/chat", json=body, headers=headers)
            data = response.json() if response.status_code == 200 else {}
            results.append((response.status_code, data.get("model_version")))
            session, token = session or data.get("session_id"), token or data.get("session_token")
            await asyncio.sleep(0.1)  # steady traffic that leaves the distillation some CPU

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=client_limits()) as client:
        await asyncio.gather(*(visitor(client, n) for n in range(4)))


def test_agents_corrections_are_learned_and_published_under_load(live_registry, tmp_path):
    """The whole loop: the bot gets German phrasings wrong, agents correct them through the API, one
    redistillation run publishes a version that answers the corrected phrasings and unseen paraphrases,
    within the golden tolerance, while visitors keep chatting with no failed request."""
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    add_agents(db_url, "alice")
    before = ServedModel.load(live_registry)
    wrong = [t for intent, texts in GERMAN.items() for t in texts if before.classifier.predict(t).top.name != intent]
    assert len(wrong) >= 10, "the demo bot already understands these; the test would show nothing"

    with served(live_registry, db_url, {"DISTILBOT_RELOAD_INTERVAL_S": "0.5"}) as (url, _process):
        _label_through_the_api(url, GERMAN)
        stop, results = asyncio.Event(), []

        async def load_while(publishing):
            task = asyncio.create_task(_chat_load(url, stop, results))
            done = await asyncio.to_thread(publishing)
            deadline = time.monotonic() + 30  # until the server reports the new version
            while time.monotonic() < deadline and not any(v == "v0002" for _, v in results[-20:]):
                await asyncio.sleep(0.2)
            stop.set()
            await task
            return done

        run = asyncio.run(load_while(lambda: redistill_cli(live_registry, db_url, *AGREEMENT, *DEMO_GATE)))
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "published v0002" in run.stdout
        assert results and all(status == 200 for status, _ in results), [r for r in results if r[0] != 200][:5]
        assert {v for _, v in results} == {"v0001", "v0002"}
        assert httpx.get(f"{url}/health").json()["model_version"] == "v0002"

    report = json.loads(next((live_registry / "reports").glob("*.json")).read_text())
    assert report["published"] == "v0002"
    assert report["harvest"]["labelled"]["correction"] + report["harvest"]["labelled"]["confirmation"] == 20
    checks = {c["name"]: c for c in report["gate"]}
    assert all(c["passed"] for c in checks.values()) and checks["golden"]["counted"]
    assert checks["golden"]["high"] <= report["gate_settings"]["tolerance"]  # a regression beyond it is ruled out
    assert checks["drift"]["counted"] is False  # the baseline is current itself on the first run
    assert not [f for f in live_registry.rglob("*") if f.suffix in {".jsonl", ".txt", ".json", ".md", ".yml"}
                and "wo ist meine Bestellung" in f.read_text(errors="ignore")]  # visitor text: not in the registry
    assert (tmp_path / "redistill-work").is_dir() and report["batch"].startswith(str(tmp_path / "redistill-work"))

    after = ServedModel.load(live_registry)
    right = lambda phrasings: [t for i, ts in phrasings.items() for t in ts  # noqa: E731
                               if after.classifier.predict(t).top.name == i]
    assert len(right(GERMAN)) >= 16  # of 20, the held-out ones included
    assert len(right(GERMAN_PARAPHRASES)) >= 3  # of 4 never seen
    print("\n" + next((live_registry / "reports").glob("*.md")).read_text())

    # The visitors' chat during the run is new material for the next run; from now on there is nothing new.
    second = redistill_cli(live_registry, db_url, "--since", datetime.now(UTC).isoformat(), *AGREEMENT)
    assert second.returncode == 4, second.stdout + second.stderr
    assert "nothing new" in second.stdout


def test_a_new_intent_added_through_the_api_is_learned_and_answered_after_the_hot_reload(live_registry, tmp_path):
    """An agent proposes an intent with its answer and a dozen messages through the agent API, an admin approves
    it; one run learns it while two warm replicas serve, and both answer it with that answer once they have
    reloaded. (Adding it to data/train.jsonl and data/templates.yml works the same way.)"""
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    add_agents(db_url, "alice", "ada")
    made_admin = subprocess.run([sys.executable, "-m", "bot", "agent", "role", "ada", "admin", "--db", db_url],
                                cwd=ROOT, capture_output=True, text=True)
    assert made_admin.returncode == 0, made_admin.stderr
    answer = "We gift-wrap any order for €3.50: tick \"Gift wrapping\" at checkout. Questions? {support_email}"
    env = {**UNLIMITED, "DISTILBOT_RELOAD_INTERVAL_S": "0.5"}
    with served(live_registry, db_url, env) as (url, _), served(live_registry, db_url, env) as (url_b, _):
        alice = login(url, "alice")
        added = alice.post("/intents", json={"name": "gift_wrapping", "answer": answer, "examples": GIFT_WRAP,
                                             "buttons": [{"title": "Talk to a person", "payload": "/contact_human"}]})
        assert added.status_code == 201, added.text
        assert alice.post("/intents", json={"name": "gift_wrapping", "answer": answer,
                                            "examples": GIFT_WRAP}).status_code == 409
        assert alice.post("/intents", json={"name": "order_status", "answer": "x",
                                            "examples": GIFT_WRAP}).status_code == 409  # the model knows it
        bad = alice.post("/intents", json={"name": "gift_notes", "answer": "see {nowhere}", "examples": GIFT_WRAP})
        assert bad.status_code == 422 and "unknown placeholders ['nowhere']" in bad.json()["detail"]
        assert [i["name"] for i in alice.get("/intents/new").json()] == ["gift_wrapping"]
        assert alice.post("/intents/gift_wrapping/approve").status_code == 403  # agents propose, admins approve
        approved = login(url, "ada").post("/intents/gift_wrapping/approve")
        assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
        for replica in (url, url_b):  # the action threads exist before the reload (what hid the stale answers)
            for n in range(10):
                Visitor(replica).say(["how much is shipping", "hello", "how do I return an item"][n % 3])

        run = redistill_cli(live_registry, db_url, *AGREEMENT, *DEMO_GATE)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        for replica in (url, url_b):
            deadline = time.monotonic() + 30
            while httpx.get(f"{replica}/health").json()["model_version"] != "v0002" and time.monotonic() < deadline:
                time.sleep(0.2)
            reply = Visitor(replica).say("could you wrap it as a gift")
            assert reply["model_version"] == "v0002" and reply["intent"]["name"] == "gift_wrapping", reply
            assert reply["template"] == "gift_wrapping_answer"
            assert reply["replies"][0]["text"].startswith("We gift-wrap any order for €3.50"), reply["replies"]
    report = json.loads(next((live_registry / "reports").glob("*.json")).read_text())
    assert report["new_intents"] == ["gift_wrapping"] and report["harvest"]["labelled"]["new_intent"] == 12
    learned = Registry(live_registry).current()  # `make demo` again keeps it (tests/e2e/test_learned_versions.py)
    assert learned.manifest["descends_from"] == Artifact(live_registry / "v0001").manifest["fingerprint"]


def test_a_poor_candidate_is_rejected_and_current_stays(live_registry, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(db_url)  # one new message, so there is something to learn
    with make_sessionmaker(engine).begin() as db:
        db.add(Conversation(id="c1", token_hash="x" * 64, slots={}))
        db.add(Message(conversation_id="c1", role="user", text="where is my order please", intent="order_status",
                       created_at=datetime.now(UTC) - timedelta(minutes=5)))  # settled before the run
    engine.dispose()
    current = os.readlink(live_registry / "current")
    run = redistill_cli(live_registry, db_url, "--set", "epochs=1", "--set", "warm_start=false",
                        "--set", "lr=1e-9", "--set", "head_lr=1e-9", "--set", "onnx=fp32")
    assert run.returncode == 3, run.stdout[-3000:] + run.stderr[-3000:]
    assert "kept v0001: failed golden" in run.stdout
    assert os.readlink(live_registry / "current") == current and Registry(live_registry).versions() == ["v0001"]
    assert not list(live_registry.glob(".staging-*"))
    batch = next((tmp_path / "redistill-work").glob("batch-*"))  # kept for review
    assert (batch / "unlabelled.txt").read_text() == "where is my order please\n"
    # The rejected batch does not come back: the next run has nothing new to learn.
    again = redistill_cli(live_registry, db_url)
    assert again.returncode == 4 and "nothing new" in again.stdout, again.stdout + again.stderr


def test_a_run_killed_mid_distillation_or_mid_publish_leaves_everything_consistent(live_registry, tmp_path,
                                                                                    monkeypatch):
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as db:
        db.add(Conversation(id="c1", token_hash="x" * 64, slots={}))
        db.add(Message(conversation_id="c1", role="user", text="wo ist meine Bestellung", intent="greeting",
                       created_at=datetime.now(UTC) - timedelta(minutes=5)))
    engine.dispose()
    store_before = (tmp_path / "bot.db").read_bytes()
    current = os.readlink(live_registry / "current")

    # Killed while distilling: SIGKILL once the student's first epoch is in the run log, with more to come.
    process = subprocess.Popen([sys.executable, "-m", "distill", "redistill", "--registry", str(live_registry),
                                "--db", db_url, "--work-dir", str(tmp_path / "work"), "--set", "epochs=3"],
                               cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:  # the stage lines end with a newline (the progress bars do not)
        if line.startswith("[distill] build student"):
            break
    threading.Thread(target=process.stdout.read, daemon=True).start()  # a full pipe would stall the run
    deadline, trained = time.monotonic() + 600, False
    while not trained and process.poll() is None and time.monotonic() < deadline:
        trained = any('"stage": "student"' in log.read_text() for log in live_registry.glob(".runs/*/run_log.jsonl"))
        time.sleep(0.05)
    assert trained and process.poll() is None, "the run ended, or trained no epoch, before it could be killed"
    process.kill()
    process.wait()
    assert os.readlink(live_registry / "current") == current and Registry(live_registry).versions() == ["v0001"]
    assert (tmp_path / "bot.db").read_bytes() == store_before  # the store is only ever read

    # Killed mid-publish: the process dies between naming the new version and switching `current`.
    from distill import redistill as module

    def die(self, version):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(Registry, "switch", die)
    options = module.Options(registry=live_registry, db_url=db_url, config=_config(), train=[DATA / "train.jsonl"],
                             golden=DATA / "test.jsonl", templates=DATA / "templates.yml", work_dir=tmp_path / "work",
                             gate=GateSettings(tolerance=0.03, ece_tolerance=0.03))  # DEMO_GATE
    with pytest.raises(KeyboardInterrupt):
        module.redistill(options)
    assert os.readlink(live_registry / "current") == current
    monkeypatch.undo()

    # The next run starts clean and publishes; the killed run's harvest is not taken again (it stays for review).
    code, report = module.redistill(options)
    assert code == 0, report["decision"]
    assert report["harvest"]["unlabelled"] == 0 and len(list((tmp_path / "work").glob("batch-*"))) == 3
    assert os.readlink(live_registry / "current") != current and not list(live_registry.glob(".staging-*"))
    assert ServedModel.load(live_registry).version == report["published"]


def _config():
    from distill.config import load_config

    return load_config(ROOT / "configs" / "distill.yaml", ["epochs=2", "latency_messages=10"])
