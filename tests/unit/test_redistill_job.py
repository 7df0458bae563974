"""A redistillation started from the console (bot/api/redistill_job.py): its own process, its last line of output
as progress, its outcome recorded; a record whose process is gone is not shown as running."""

from __future__ import annotations

import json
import time

from bot.api.redistill_job import JobState, RedistillJobs


def test_a_job_that_fails_is_recorded_with_its_last_line(tmp_path):
    jobs = RedistillJobs(tmp_path / "jobs", tmp_path / "no-registry", f"sqlite:///{tmp_path / 'none.db'}", [])
    started = jobs.start("Ada")
    assert started.state is JobState.RUNNING and started.pid
    deadline = time.monotonic() + 120
    while (job := jobs.get(started.id)).state is JobState.RUNNING:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job.state is JobState.FAILED and job.exit_code == 2 and job.progress.startswith("error:"), job
    assert jobs.latest() == job
    assert "sqlite" not in json.dumps(json.loads((tmp_path / "jobs" / f"{job.id}.json").read_text()))


def test_a_running_record_whose_process_is_gone_is_unknown(tmp_path):
    folder = tmp_path / "jobs"
    folder.mkdir()
    record = {"id": "a" * 32, "state": "running", "started_by": "Ada", "started_at": "2026-11-30T04:00:00+00:00",
              "pid": 2**22 + 12345, "host": "elsewhere"}
    (folder / f"{'a' * 32}.json").write_text(json.dumps(record))
    jobs = RedistillJobs(folder, tmp_path, "sqlite://", [])
    assert jobs.get("a" * 32).state is JobState.UNKNOWN
    assert jobs.get("../../etc/passwd") is None
