"""An erasure carried into what only the redistillation job holds (distill/erasure.py, `distill erase`): the
erased visitor texts leave the harvested batches and the teacher-output cache, the rest stays, and each erasure
is carried out once."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from bot.desk.erasure import erase
from bot.infra.store import Agent, Conversation, Message, make_engine, make_sessionmaker
from distill.cache import EmbeddingCache
from distill.cli import app

ERASED, KEPT = "  my address is 12 Elm St,   Springfield ", "where is my order"


def test_an_erasure_leaves_the_harvested_batches_and_the_teacher_cache(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as db:
        db.add(Agent(id=1, username="ada", display_name="Ada", password_hash="-", role="admin"))
        row = Conversation(token_hash="x" * 64, slots={}, status="bot")
        db.add(row)
        db.flush()
        db.add(Message(conversation_id=row.id, role="user", text=ERASED))
    with make_sessionmaker(engine).begin() as db:
        erase(db, 1, conversation_id=row.id)
    engine.dispose()

    normalised = " ".join(ERASED.split())
    batch = tmp_path / "work" / "batch-20261130T000000000000Z"
    batch.mkdir(parents=True)
    (batch / "unlabelled.txt").write_text(f"{normalised}\n{KEPT}\n")
    (batch / "train.jsonl").write_text("".join(json.dumps({"text": t, "intent": "x"}) + "\n"
                                               for t in (ERASED.strip(), KEPT)))
    (batch / "waiting_for_admin.json").write_text(json.dumps([{"text": ERASED, "intent": "x"}, {"text": KEPT}]))
    cache = EmbeddingCache(tmp_path / "cache" / "teacher", "abc")
    cache.get([normalised, KEPT], lambda texts: torch.ones(len(texts), 4))
    registry = tmp_path / "registry"
    registry.mkdir()

    arguments = ["erase", "--registry", str(registry), "--db", db_url, "--work-dir", str(tmp_path / "work"),
                 "--cache-dir", str(tmp_path / "cache")]
    done = CliRunner().invoke(app, arguments)
    assert done.exit_code == 0, done.output
    assert "1 erasures carried out (1 in all): 3 harvested lines and 1 teacher outputs removed" in done.output
    assert (batch / "unlabelled.txt").read_text() == f"{KEPT}\n"
    assert [json.loads(line)["text"] for line in (batch / "train.jsonl").read_text().splitlines()] == [KEPT]
    assert json.loads((batch / "waiting_for_admin.json").read_text()) == [{"text": KEPT}]
    computed = []
    cache.get([normalised, KEPT], lambda texts: computed.extend(texts) or torch.ones(len(texts), 4))
    assert computed == [normalised]  # its teacher output was gone; the other one was still cached

    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 0 and "0 erasures carried out (1 in all)" in again.output
