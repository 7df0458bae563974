"""What one redistillation run leaves in the registry for the next (`redistill_state.json`; no visitor text):
written by distill's runs, and by the console's models page when an admin pins the drift baseline."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from bot.model.artifact import write_atomic

STATE = "redistill_state.json"


class RedistillState(BaseModel):
    """What one run leaves for the next (in the registry: no visitor text)."""

    harvested_until: datetime | None = None
    """Visitor messages before this were harvested by an earlier run (published, rejected or killed)."""
    published: str | None = None
    data_digest: str | None = None
    """The base data's digest at the last publish (a change is something new to learn)."""
    baseline: str | None = None
    """The version every candidate is also compared with (drift), pinned at the first run or by an operator."""
    erasures_done: list[int] = []
    """The visitor erasures (bot.desk.erasure) carried into the work folder and the teacher-output cache."""

    @classmethod
    def load(cls, path: Path) -> RedistillState:
        return cls.model_validate_json(path.read_text()) if path.exists() else cls()

    def save(self, path: Path) -> None:
        write_atomic(path, self.model_dump_json(indent=2))
