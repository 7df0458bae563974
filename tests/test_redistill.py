"""Redistillation: the bot learns from its agents' corrections behind a quality gate, with no downtime.

The slow tests run the real command (`python -m distill redistill`) with the real teacher and student on a
copy of the demo registry and a real SQLite store filled through the real API."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.artifact import Registry, RegistryBusy
from bot.served_model import ServedModel
from bot.store import Agent, Conversation, Correction, Message, make_engine, make_sessionmaker
from distill.data import Example
from distill.harvest import Harvest, Labelled, collect
from distill.redistill import Gate, judge, merge
from tests.conftest import DATA, ROOT
from tests.servers import served
from tests.test_desk import Visitor, add_agent, login

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


def redistill_cli(registry: Path, db_url: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distill", "redistill", "--registry", str(registry), "--db", db_url,
                           *extra], cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=1500)


# ---------------------------------------------------------------- merging, harvesting, the gate (fast)

def test_merge_lets_corrections_win_and_keeps_golden_and_held_out_corrections_out_of_training():
    base = [Example("where is my order", "order_status"), Example("my money back?", "return_item"),
            Example("golden question", "greeting")]
    corrections = [Labelled(f"korrektur {i}", "refund_status", "correction", "greeting") for i in range(20)]
    harvest = Harvest(labelled=[Labelled("my money back?", "refund_status", "correction", "return_item"),
                                Labelled("thanks a lot", "thanks", "thumbs_up", "thanks"), *corrections],
                      unlabelled=["where is my order", "brand new message", "golden question"])
    golden = [Example("Golden  Question", "greeting")]
    merged = merge(base, harvest, golden, holdout_fraction=0.0)
    train = {e.text: e.intent for e in merged.train}
    assert train["my money back?"] == "refund_status"  # the agent's label overrides the base data
    assert train["thanks a lot"] == "thanks" and "golden question" not in train  # golden: never trained on
    assert merged.unlabelled == ["brand new message"] and merged.held_out == []

    merged = merge(base, harvest, golden, holdout_fraction=0.2)
    train, held = {e.text for e in merged.train}, {e.text for e in merged.held_out}
    assert 1 <= len(held) < 21 and not held & train  # held-out corrections are never trained on
    assert held == {e.text for e in merge(base, harvest, [], 0.2).held_out}  # the same ones from run to run


def test_collect_reads_corrections_confirmations_thumbs_up_and_new_messages(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    sessions = make_sessionmaker(make_engine(db_url))
    now = datetime.now(UTC)
    with sessions.begin() as db:
        db.add(Agent(id=1, username="alice", display_name="Alice", password_hash="x"))
        db.add(Conversation(id="c1", token_hash="x" * 64, slots={}))
        rows = [("user", "wo ist mein Paket", "greeting", None, None), ("bot", "Hello!", None, "answer", None),
                ("user", "how much is shipping", "shipping_cost", None, None),
                ("bot", "€4.95", None, "answer", "up"), ("user", "/return_item", "return_item", None, None),
                ("bot", "Returns…", None, "answer", "up"), ("user", "thanks", "thanks", None, None),
                ("user", "something new", "greeting", None, None)]
        for i, (role, text, intent, decision, feedback) in enumerate(rows, start=1):
            db.add(Message(id=i, conversation_id="c1", role=role, text=text, intent=intent, decision=decision,
                           feedback=feedback, created_at=now - timedelta(hours=2 if i < 8 else 0)))
        db.flush()
        db.add(Correction(message_id=1, text="wo ist mein Paket", intent="order_status", predicted_intent="greeting",
                          agent_id=1))
        db.add(Correction(message_id=7, text="thanks", intent="thanks", predicted_intent="thanks", agent_id=1))
    harvest = collect(db_url, since=now - timedelta(hours=1))
    got = {(item.text, item.intent, item.source) for item in harvest.labelled}
    assert got == {("wo ist mein Paket", "order_status", "correction"), ("thanks", "thanks", "confirmation"),
                   ("how much is shipping", "shipping_cost", "thumbs_up")}  # a button press is not a phrasing
    assert harvest.unlabelled == ["something new"]  # only what came after `since`, and nothing labelled
    assert harvest.new_since == {"correction": 1, "confirmation": 1, "thumbs_up": 0, "new_intent": 0, "unlabelled": 1}


def test_the_gate_checks_golden_accuracy_held_out_corrections_and_recall():
    before = {"golden": {"accuracy": 0.90, "per_intent": {"a": 0.9, "b": 0.9}, "messages": 100},
              "held_out": {"accuracy": 0.0, "per_intent": {}, "messages": 4}}
    good = {"golden": {"accuracy": 0.897, "per_intent": {"a": 0.9, "b": 0.8}, "messages": 100},
            "held_out": {"accuracy": 0.75, "per_intent": {}, "messages": 4}}
    assert all(c["passed"] for c in judge(before, good, Gate(0.005, 0.5)))
    worse = {**good, "golden": {"accuracy": 0.89, "per_intent": {"a": 0.9, "b": 0.4}, "messages": 100}}
    failed = [c["check"] for c in judge(before, worse, Gate(0.005, 0.5)) if not c["passed"]]
    assert failed == ["golden-set accuracy drops by at most the tolerance", "every intent keeps the minimum recall"]
    no_gain = {**good, "held_out": {"accuracy": 0.0, "per_intent": {}, "messages": 4}}
    assert [c["check"] for c in judge(before, no_gain, Gate()) if not c["passed"]] == ["held-out corrections improve"]


def test_registry_lock_leftovers_and_retention(tmp_path):
    registry = Registry(tmp_path / "registry")
    for _ in range(6):
        staged = registry.stage()
        (staged / "labels.json").write_text("[]")
        registry.publish(staged)
    registry.switch("v0003")  # an operator rolled back
    subprocess.run([sys.executable, "-c", "import sys; from bot.artifact import Registry; "
                    "Registry(sys.argv[1]).stage()", str(registry.root)], cwd=ROOT, check=True)  # a run killed half-way
    with registry.lock():
        with pytest.raises(RegistryBusy), registry.lock():
            pass
        assert len(registry.clean_staging()) == 1
        # kept: the two newest, current (v0003) and the one before it (where a rollback goes)
        assert registry.prune(keep=2) == ["v0001", "v0004"]
    assert registry.versions() == ["v0002", "v0003", "v0005", "v0006"]


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

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(visitor(client, n) for n in range(4)))


def test_agents_corrections_are_learned_and_published_under_load(live_registry, tmp_path):
    """The whole loop: the bot gets German phrasings wrong, agents correct them through the API, one
    redistillation run publishes a version that answers the corrected phrasings and unseen paraphrases,
    within the golden tolerance, while visitors keep chatting with no failed request."""
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    add_agent(db_url, "alice", "Alice")
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

        run = asyncio.run(load_while(lambda: redistill_cli(live_registry, db_url, *AGREEMENT)))
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "published v0002" in run.stdout
        assert results and all(status == 200 for status, _ in results), [r for r in results if r[0] != 200][:5]
        assert {v for _, v in results} == {"v0001", "v0002"}
        assert httpx.get(f"{url}/health").json()["model_version"] == "v0002"

    report = json.loads(next((live_registry / "reports").glob("*.json")).read_text())
    assert report["published"] == "v0002"
    assert report["harvest"]["labelled"]["correction"] + report["harvest"]["labelled"]["confirmation"] == 20
    checks = {c["check"]: c for c in report["gate"]}
    golden = checks["golden-set accuracy drops by at most the tolerance"]
    assert golden["passed"] and golden["before"] - golden["after"] <= 0.005
    held = checks["held-out corrections improve"]
    assert held["after"] > held["before"]

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


def test_a_new_intent_added_through_the_api_is_learned_in_one_run(live_registry, tmp_path):
    """An agent adds an intent with its answer and a dozen messages through the agent API; one run learns it
    and the published bot answers it with that answer. (Adding it to data/train.jsonl and
    data/templates.yml works the same way: those are the run's base data.)"""
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    add_agent(db_url, "alice", "Alice")
    add_agent(db_url, "ada", "Ada")
    made_admin = subprocess.run([sys.executable, "-m", "bot", "agent", "role", "ada", "admin", "--db", db_url],
                                cwd=ROOT, capture_output=True, text=True)
    assert made_admin.returncode == 0, made_admin.stderr
    answer = "We gift-wrap any order for €3.50: tick \"Gift wrapping\" at checkout. Questions? {support_email}"
    with served(live_registry, db_url) as (url, _process):
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

    run = redistill_cli(live_registry, db_url, *AGREEMENT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(next((live_registry / "reports").glob("*.json")).read_text())
    assert report["new_intents"] == ["gift_wrapping"] and report["harvest"]["labelled"]["new_intent"] == 12
    after = ServedModel.load(live_registry)
    assert after.version == "v0002" and "gift_wrapping" in after.classifier.labels
    asked = after.classifier.predict("could you wrap it as a gift")
    assert asked.top.name == "gift_wrapping"
    template = after.retriever.best_for_intent(asked.embedding, "gift_wrapping")
    assert template.id == "gift_wrapping_answer" and template.render(after.retriever.book.slots).startswith(
        "We gift-wrap any order for €3.50")


def test_a_poor_candidate_is_rejected_and_current_stays(live_registry, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(db_url)  # one new message, so there is something to learn
    with make_sessionmaker(engine).begin() as db:
        db.add(Conversation(id="c1", token_hash="x" * 64, slots={}))
        db.add(Message(conversation_id="c1", role="user", text="where is my order please", intent="order_status"))
    engine.dispose()
    current = os.readlink(live_registry / "current")
    run = redistill_cli(live_registry, db_url, "--set", "epochs=1", "--set", "warm_start=false",
                        "--set", "lr=1e-9", "--set", "head_lr=1e-9", "--set", "onnx=fp32")
    assert run.returncode == 3, run.stdout[-3000:] + run.stderr[-3000:]
    assert "kept v0001: failed golden-set accuracy" in run.stdout
    assert os.readlink(live_registry / "current") == current and Registry(live_registry).versions() == ["v0001"]
    assert not list(live_registry.glob(".staging-*"))


def test_a_run_killed_mid_distillation_or_mid_publish_leaves_everything_consistent(live_registry, tmp_path,
                                                                                    monkeypatch):
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as db:
        db.add(Conversation(id="c1", token_hash="x" * 64, slots={}))
        db.add(Message(conversation_id="c1", role="user", text="wo ist meine Bestellung", intent="greeting"))
    engine.dispose()
    store_before = (tmp_path / "bot.db").read_bytes()
    current = os.readlink(live_registry / "current")

    # Killed while distilling: SIGKILL as soon as the student's training has begun.
    process = subprocess.Popen([sys.executable, "-m", "distill", "redistill", "--registry", str(live_registry),
                                "--db", db_url, "--set", "epochs=3"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:  # the stage lines end with a newline (the progress bars do not)
        if line.startswith("[distill] build student"):
            break
    time.sleep(2)  # into the first epoch
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
                             golden=DATA / "test.jsonl", templates=DATA / "templates.yml")
    with pytest.raises(KeyboardInterrupt):
        module.redistill(options)
    assert os.readlink(live_registry / "current") == current
    monkeypatch.undo()

    # The next run starts clean and publishes.
    code, report = module.redistill(options)
    assert code == 0, report["decision"]
    assert os.readlink(live_registry / "current") != current and not list(live_registry.glob(".staging-*"))
    assert ServedModel.load(live_registry).version == report["published"]


def _config():
    from distill.config import load_config

    return load_config(ROOT / "configs" / "distill.yaml", ["epochs=2", "latency_messages=10",
                                                          "unlabelled_min_confidence=0.6"])
