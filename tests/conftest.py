"""Shared fixtures: a tiny random transformer (seconds), and one real distilled demo bot (minutes, built once)."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from transformers import BertConfig, BertModel, BertTokenizerFast

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub here: fail fast instead of retrying

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared" / "datasets"


def _tiny_vocab() -> dict[str, int]:
    """WordPiece vocabulary of the demo data's words, plus single characters so nothing is unknown."""
    words = sorted({w for line in (DATA / "train.jsonl").read_text().splitlines()
                    for w in json.loads(line)["text"].lower().split() if w.isalpha()})
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *words]
    return {token: i for i, token in enumerate(dict.fromkeys(tokens))}


def make_tiny_encoder_dir(path: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A randomly initialised 2-layer BERT with a WordPiece tokenizer, saved as a sentence-transformers dir."""
    import torch

    from bot.encoder import SentenceEncoder

    path.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(vocab=_tiny_vocab(), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=128)
    SentenceEncoder(BertModel(config), tokenizer).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory) -> Path:
    return make_tiny_encoder_dir(tmp_path_factory.mktemp("tiny-teacher"), hidden=48, layers=2, seed=1)


@pytest.fixture(scope="session")
def tiny_student_dir(tmp_path_factory) -> Path:
    return make_tiny_encoder_dir(tmp_path_factory.mktemp("tiny-student"), hidden=32, layers=4, seed=2)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """The real weights cache is shared (joining the teacher is slow); tiny-model caches stay private."""
    return Path(os.environ.get("DISTILBOT_CACHE", Path.home() / ".cache" / "distilbot"))


@pytest.fixture(scope="session")
def demo_registry(tmp_path_factory, cache_dir) -> Path:
    """The real pipeline (pinned teacher and student) on the full demo data, shortened to 3 epochs.
    DISTILBOT_TEST_REGISTRY names one built earlier by this fixture, to reuse while developing."""
    if os.environ.get("DISTILBOT_TEST_REGISTRY"):
        return Path(os.environ["DISTILBOT_TEST_REGISTRY"])
    from distill.config import load_config
    from distill.pipeline import run
    from distill.run_inputs import RunInputs

    registry = tmp_path_factory.mktemp("demo-registry")
    # 4 layers: in the 3 epochs the tests can afford they learn what the default 3 layers need the full schedule for
    config = load_config(ROOT / "configs" / "distill.yaml", ["epochs=3", "student_layers=4", "latency_messages=30"])
    run(config, RunInputs([DATA / "train.jsonl"], test=[DATA / "test.jsonl"], templates=DATA / "templates.yml"),
        registry, cache_dir)
    return registry


def _slice(source: Path, target: Path, per_intent: int) -> Path:
    kept, lines = defaultdict(int), []
    for line in source.read_text().splitlines():
        intent = json.loads(line)["intent"]
        if kept[intent] < per_intent:
            kept[intent] += 1
            lines.append(line)
    target.write_text("\n".join(lines) + "\n")
    return target


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """8 training and 2 test messages per intent of the demo data."""
    folder = tmp_path_factory.mktemp("small-data")
    return (_slice(DATA / "train.jsonl", folder / "train.jsonl", 8),
            _slice(DATA / "test.jsonl", folder / "test.jsonl", 2))


def tiny_overrides(teacher_dir, student_dir) -> list[str]:
    """Config for a run of seconds on the tiny models (the int8 parity check needs a trained model)."""
    return [f"teacher={teacher_dir}", f"student={student_dir}", "student_layers=null", "epochs=2",
            "latency_messages=10", "teacher_head_c=[1.0]", "onnx=fp32"]


PG_ADMIN_URL = os.environ.get("DISTILBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DISTILBOT_TEST_REDIS", "redis://127.0.0.1:6379/0")


@contextlib.contextmanager
def fresh_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the shared server; dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty database: a SQLite file, or a fresh PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    with fresh_pg_database("distilbot_test") as url:
        yield url


@pytest.fixture(scope="module")
def pg_url() -> str:
    """A fresh PostgreSQL database for one module's API replicas."""
    with fresh_pg_database("distilbot_replicas") as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The shared Redis; fail at once (not after the servers' 120 s readiness wait) when it is not there."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"these tests need Redis at {REDIS_URL} (DISTILBOT_TEST_REDIS): {exc}")
    finally:
        client.close()
    return REDIS_URL


CHROMIUM = os.environ.get("DISTILBOT_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("DISTILBOT_SCREENSHOTS", Path(os.environ.get("TMPDIR", "/tmp")) /
                                  "distilbot-screenshots"))
AGENT_PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (no browser download: the system's binary). Per module: the
    sync API keeps an event loop running in the main thread until it stops, which later tests' asyncio.run
    would trip over."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def web_server(demo_registry, tmp_path_factory):
    """A real server with the real student, a temporary SQLite store and two agents (alice, bob)."""
    from tests.servers import add_agent, served

    db_url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'bot.db'}"
    add_agent(db_url, "alice", "Alice", AGENT_PASSWORD)
    add_agent(db_url, "bob", "Bob", AGENT_PASSWORD)
    with served(demo_registry, db_url) as (url, process):
        yield url, db_url, process
