"""A per-text cache of a frozen encoder's outputs on disk, so no text is embedded twice by the same weights."""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch


class EmbeddingCache:
    """One file per weights fingerprint: {text: vector}. Missing texts are computed and appended."""

    def __init__(self, directory: Path, key: str):
        self.path = Path(directory) / f"embeddings-{key}.pt"

    def _read(self) -> dict[str, torch.Tensor]:
        if not self.path.exists():
            return {}
        stored = torch.load(self.path, weights_only=True)
        return dict(zip(stored["texts"], stored["vectors"]))

    @contextmanager
    def _locked(self):
        """Serialise writers (two runs may share a cache): merge under an exclusive file lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def get(self, texts: list[str], compute: Callable[[list[str]], torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Vectors for `texts` in order, and how many had to be computed."""
        known = self._read()
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            computed = dict(zip(missing, compute(missing)))
            with self._locked():
                known = {**self._read(), **computed}
                tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
                names = list(known)
                torch.save({"texts": names, "vectors": torch.stack([known[t] for t in names])}, tmp)
                os.replace(tmp, self.path)
        return torch.stack([known[t] for t in texts]), len(missing)
