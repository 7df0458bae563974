"""The compose file as compose reads it: its path, its variable interpolation, Redis's start-up script."""

from __future__ import annotations

import os
import re

from tests.helpers.constants import ROOT

COMPOSE = ROOT / "deploy" / "compose.yaml"


def interpolated(text: str) -> str:
    """What compose reads after its variable interpolation: ${NAME:-default} from the environment or the
    default, $$ for a literal $."""
    return re.sub(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}",
                  lambda m: "$" if m[0] == "$$" else os.environ.get(m[1]) or m[2] or "", text)


def redis_script(command: list[str]) -> str:
    assert command[:2] == ["sh", "-c"] and command[3] == "redis-server"
    return command[2]
