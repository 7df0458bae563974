"""Carrying a visitor's erasure (bot.desk.erasure) into what only the redistillation job holds: the harvested
batches in its work folder and the teacher-output cache. The store keeps each erasure's text digests; this
removes every line and cache entry whose text has one of them, and remembers (in the registry's redistillation
state) which erasures are done. Run at the start of every redistillation, and by `distill erase` at once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from bot.infra.store import Erasure
from bot.model.artifact import write_atomic
from distill.cache import EmbeddingCache
from distill.harvest import read_only_engine

JSONL_FILES = ("train.jsonl", "held_out.jsonl")
TEXT_FILES = ("unlabelled.txt",)
JSON_LISTS = ("waiting_for_admin.json",)


@dataclass(frozen=True)
class ErasureResult:
    erasures: int
    """Erasures carried out by this call (those not done before)."""
    done: list[int]
    """Every erasure carried out so far (ids: one committed late on PostgreSQL may have a lower id)."""
    batch_lines: int
    """Lines removed from harvested batches."""
    cache_entries: int
    """Teacher outputs removed from the cache."""


def _erased(text: str, digests: set[str]) -> bool:
    return any(hashlib.sha256(form.encode()).hexdigest() in digests
               for form in (text, text.strip(), " ".join(text.split())))


def pending(db_url: str, done: set[int]) -> tuple[set[str], list[int]]:
    """The digests of the erasures not in `done`, and their ids (read-only)."""
    engine = read_only_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = [row for row in connection.execute(select(Erasure.id, Erasure.digests).order_by(Erasure.id))
                    if row.id not in done]
    finally:
        engine.dispose()
    return {d for _, digests in rows for d in digests}, [row.id for row in rows]


def scrub_batches(work_dir: Path, digests: set[str]) -> int:
    """Remove the erased texts from every harvested batch; the number of lines (or items) removed."""
    removed = 0
    for batch in sorted(work_dir.glob("batch-*")):
        for name in (*JSONL_FILES, *TEXT_FILES, *JSON_LISTS):
            path = batch / name
            if not path.is_file():
                continue
            if name in JSON_LISTS:
                items = json.loads(path.read_text(encoding="utf-8"))
                kept_items = [i for i in items if not _erased(str(i.get("text", "")), digests)]
                if len(kept_items) != len(items):
                    write_atomic(path, json.dumps(kept_items, ensure_ascii=False, indent=2))
                    removed += len(items) - len(kept_items)
                continue
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            text_of = (lambda line: json.loads(line)["text"]) if name in JSONL_FILES else str.rstrip
            kept = [line for line in lines if not line.strip() or not _erased(text_of(line), digests)]
            if len(kept) != len(lines):
                write_atomic(path, "".join(kept))
                removed += len(lines) - len(kept)
    return removed


def scrub_caches(cache_dir: Path, digests: set[str]) -> int:
    """Remove the erased texts' teacher outputs from every cache file under `cache_dir`."""
    return sum(cache.forget(digests) for cache in EmbeddingCache.all_in(cache_dir)) if digests else 0


def carry_out(db_url: str, done: list[int], work_dir: Path, cache_dir: Path) -> ErasureResult:
    """Every erasure not in `done`, in the work folder and the cache."""
    digests, ids = pending(db_url, set(done))
    lines = scrub_batches(work_dir, digests) if digests and work_dir.is_dir() else 0
    return ErasureResult(len(ids), sorted({*done, *ids}), lines, scrub_caches(cache_dir, digests))
