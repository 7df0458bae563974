"""FAISS over the answer templates' example questions: finds the template that fits a message best."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from bot.model.artifact import write_atomic
from bot.model.templates import Template, TemplateBook

if TYPE_CHECKING:
    from bot.model.encoder import SentenceEncoder
    from bot.model.nlu import IntentClassifier


@dataclass(frozen=True)
class TemplateHit:
    template: Template
    score: float


class TemplateRetriever:
    """Inner-product search over normalised example embeddings (= cosine similarity)."""

    def __init__(self, book: TemplateBook, index: faiss.Index, rows: list[str]):
        if index.ntotal != len(rows):
            raise ValueError(f"FAISS index has {index.ntotal} rows but {len(rows)} row labels")
        self.book = book
        self.index = index
        self.rows = rows
        self._by_id = {t.id: t for t in book.templates}

    @classmethod
    def build(cls, book: TemplateBook, encoder: SentenceEncoder | IntentClassifier) -> TemplateRetriever:
        rows = [t.id for t in book.templates for _ in t.examples]
        questions = [q for t in book.templates for q in t.examples]
        vectors = np.ascontiguousarray(encoder.encode(questions or ["."]), dtype=np.float32)
        index = faiss.IndexFlatIP(vectors.shape[1])  # an empty book (every answer retired): an empty index
        vectors = vectors[:len(questions)]
        index.add(vectors)
        return cls(book, index, rows)

    def save(self, directory: Path) -> None:
        write_atomic(directory / "templates.json", self.book.model_dump_json(indent=2))
        faiss.write_index(self.index, str(directory / "templates.faiss"))
        write_atomic(directory / "templates_rows.json", json.dumps(self.rows))

    @classmethod
    def load(cls, directory: Path) -> TemplateRetriever:
        book = TemplateBook.model_validate_json((directory / "templates.json").read_text())
        index = faiss.read_index(str(directory / "templates.faiss"))
        return cls(book, index, json.loads((directory / "templates_rows.json").read_text()))

    def search(self, embedding: np.ndarray, k: int = 5) -> list[TemplateHit]:
        """The best `k` distinct templates, each scored by its closest example question (`embedding`: a
        numpy vector, or anything numpy can read, like a CPU tensor)."""
        if self.index.ntotal == 0:
            return []
        query = np.ascontiguousarray(np.asarray(embedding, dtype=np.float32).reshape(1, -1))
        scores, indices = self.index.search(query, min(self.index.ntotal, k * 8))
        hits: dict[str, float] = {}
        for score, row in zip(scores[0], indices[0]):
            if row >= 0 and self.rows[row] not in hits:
                hits[self.rows[row]] = float(score)
        return [TemplateHit(self._by_id[tid], s) for tid, s in list(hits.items())[:k]]

    def best_for_intent(self, embedding: np.ndarray, intent: str) -> Template | None:
        """The intent's template closest to the message; the intent's first one if none is near."""
        candidates = self.book.for_intent(intent)
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        for hit in self.search(embedding, k=len(self.book.templates)):
            if hit.template.intent == intent:
                return hit.template
        return candidates[0]
