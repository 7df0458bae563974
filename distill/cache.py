"""A per-text cache of a frozen encoder's outputs on disk, so no text is embedded twice by the same weights."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
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

    def get(self, texts: list[str], compute: Callable[[list[str]], torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Vectors for `texts` in order, and how many had to be computed."""
        known = self._read()
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            known.update(zip(missing, compute(missing)))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
            names = list(known)
            torch.save({"texts": names, "vectors": torch.stack([known[t] for t in names])}, tmp)
            os.replace(tmp, self.path)
        return torch.stack([known[t] for t in texts]), len(missing)
