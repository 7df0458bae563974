"""A per-text cache of a frozen encoder's outputs on disk, so no text is embedded twice by the same weights. It
keeps a SHA-256 of each text, never the text: visitors' messages pass through it, and their words must not
outlive the redistillation's retention period in a cache nobody prunes."""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache:
    """One file per weights fingerprint: {sha256 of text: vector}. Missing texts are computed and appended."""

    def __init__(self, directory: Path, key: str):
        self.path = Path(directory) / f"embeddings-{key}.pt"

    def _read(self) -> dict[str, torch.Tensor]:
        if not self.path.exists():
            return {}
        stored = torch.load(self.path, weights_only=True)
        if "texts" in stored:  # a cache from before digests: rewritten with digests on its next write
            return dict(zip(map(_digest, stored["texts"]), stored["vectors"]))
        return dict(zip(stored["digests"], stored["vectors"]))

    @contextmanager
    def _locked(self):
        """Serialise writers (two runs may share a cache): merge under an exclusive file lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def get(self, texts: list[str], compute: Callable[[list[str]], torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Vectors for `texts` in order, and how many had to be computed."""
        known, keys = self._read(), [_digest(t) for t in texts]
        missing = list(dict.fromkeys((k, t) for k, t in zip(keys, texts) if k not in known))
        if missing:
            computed = dict(zip((k for k, _ in missing), compute([t for _, t in missing])))
            with self._locked():
                known = {**self._read(), **computed}
                tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
                digests = list(known)
                torch.save({"digests": digests, "vectors": torch.stack([known[k] for k in digests])}, tmp)
                os.replace(tmp, self.path)
        return torch.stack([known[k] for k in keys]), len(missing)

    def forget(self, digests: set[str]) -> int:
        """Drop the entries of these text digests (a visitor's erased messages); how many there were."""
        if not self.path.exists():
            return 0
        with self._locked():
            known = self._read()
            kept = {k: v for k, v in known.items() if k not in digests}
            if len(kept) == len(known):
                return 0
            tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
            if kept:
                torch.save({"digests": list(kept), "vectors": torch.stack(list(kept.values()))}, tmp)
                os.replace(tmp, self.path)
            else:
                self.path.unlink()
        return len(known) - len(kept)

    @classmethod
    def all_in(cls, directory: Path) -> list[EmbeddingCache]:
        """Every cache file under `directory` (one per weights fingerprint, in any of its folders)."""
        return [cls(path.parent, path.stem.removeprefix("embeddings-"))
                for path in sorted(Path(directory).rglob("embeddings-*.pt"))]
