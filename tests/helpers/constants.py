"""Where the repository and its data are, what the tests' agents log in with, and answers that must be refused."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared" / "datasets"

AGENT_PASSWORD = "correct horse battery"
CHROMIUM = os.environ.get("DISTILBOT_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("DISTILBOT_SCREENSHOTS", Path(os.environ.get("TMPDIR", "/tmp")) /
                                  "distilbot-screenshots"))

# Answers with placeholders that are more than a plain {name}: each must be refused (tests/unit/test_templates.py,
# tests/e2e/test_proposals.py).
HOSTILE_PLACEHOLDERS = ["{support_email:>99999}", "{support_email!r}", "{support_email.__class__}",
                        "{support_email[0]}", "{0}", "{}", "{support_email:{support_email}}"]
