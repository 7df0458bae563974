"""Redistillation's own bookkeeping that needs no model: harvested batches of visitor text are deleted after
the retention period. (The real runs: tests/e2e/test_redistill.py.)"""

from __future__ import annotations

import os
import time


def test_harvested_batches_are_deleted_after_the_retention_period(tmp_path):
    from distill.redistill import prune_batches

    old, recent = tmp_path / "batch-20250101T000000000000Z", tmp_path / "batch-20250301T000000000000Z"
    for folder in (old, recent):
        folder.mkdir()
        (folder / "unlabelled.txt").write_text("a visitor's words\n")
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    assert prune_batches(tmp_path, retention_days=30) == [old.name]
    assert not old.exists() and (recent / "unlabelled.txt").exists()
