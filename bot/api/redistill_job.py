"""A redistillation an admin starts from the console: `python -m distill redistill` as its own process (never
inside the API: it trains), its output in a log whose last line is the progress, its outcome and report
recorded beside it. The registry's lock keeps it from running alongside the scheduled job (that is exit 5).

A job's files are `DISTILBOT_JOBS_DIR/<id>.json` and `<id>.log`, with the process id and host name: a job
started by another API process on the same host (a restarted one, or a worker sharing the folder) is known to
be running while that process lives; its outcome is then unknown to the API (the report in the registry still
tells). Replicas on other hosts see only their own jobs unless the folder is shared."""

from __future__ import annotations

import enum
import importlib.util
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from bot.model.artifact import write_atomic


class JobState(enum.StrEnum):
    RUNNING = "running"
    PUBLISHED = "published"
    KEPT = "kept"
    """The gate kept the served version."""
    NOTHING_NEW = "nothing_new"
    BUSY = "busy"
    """Another run held the registry."""
    FAILED = "failed"
    UNKNOWN = "unknown"
    """The API that started it stopped before it ended."""


OUTCOMES = {0: JobState.PUBLISHED, 3: JobState.KEPT, 4: JobState.NOTHING_NEW, 5: JobState.BUSY}
_REPORT = re.compile(r"\(report: .*?(redistill-[^/\s]+)\.md\)\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ID = re.compile(r"^[0-9a-f]{32}$")
log = logging.getLogger("distilbot.redistill_job")


class JobOut(BaseModel):
    id: str
    state: JobState
    started_by: str
    started_at: str
    finished_at: str | None = None
    exit_code: int | None = None
    report: str | None = Field(None, description="The redistillation report's name (GET /api/agent/models/reports/…).")
    progress: str = Field("", description="The job's last line of output (its progress bar or its last step).")
    pid: int | None = None
    host: str | None = None


class JobUnavailable(Exception):
    """Redistillation cannot be started here (its code is not installed, or one is running)."""


class RedistillJobs:
    def __init__(self, folder: Path, registry: Path, db_url: str, extra_args: list[str]):
        self.folder, self.registry, self.db_url, self.extra_args = Path(folder), registry, db_url, extra_args
        self._running: subprocess.Popen | None = None
        self._running_id: str | None = None
        self._lock = threading.Lock()

    def _record(self, job: JobOut) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.folder / f"{job.id}.json", job.model_dump_json(exclude={"progress"}))

    def start(self, started_by: str) -> JobOut:
        if importlib.util.find_spec("distill") is None or importlib.util.find_spec("torch") is None:
            raise JobUnavailable("redistillation cannot run in this API's environment (the `train` extra is not "
                                 "installed): it runs as the scheduled job (deploy/README.md)")
        with self._lock:
            if self._running is not None and self._running.poll() is None:
                raise JobUnavailable("a redistillation started here is still running")
            job_id = uuid.uuid4().hex
            command = [sys.executable, "-m", "distill", "redistill", "--registry", str(self.registry),
                       *self.extra_args]
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / f"{job_id}.log", "wb") as log:
                # the store's URL (it may hold a password) goes by the environment, never the command line
                self._running = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                 env={**os.environ, "DISTILBOT_DB_URL": self.db_url})
            job = JobOut(id=job_id, state=JobState.RUNNING, started_by=started_by,
                         started_at=datetime.now(UTC).isoformat(timespec="seconds"), pid=self._running.pid,
                         host=socket.gethostname())
            self._record(job)
            self._running_id = job.id
            threading.Thread(target=self._wait, args=(job, self._running), name="redistill-job", daemon=True).start()
        return job

    def _wait(self, job: JobOut, process: subprocess.Popen) -> None:
        code = process.wait()
        try:
            found = _REPORT.search(self._tail(job.id))
            self._record(job.model_copy(update={
                "state": OUTCOMES.get(code, JobState.FAILED), "exit_code": code, "report": found[1] if found else None,
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}))
        except OSError:
            log.exception("could not record how redistillation %s ended (exit %s)", job.id, code)
        finally:
            self._running_id = None if self._running_id == job.id else self._running_id

    @staticmethod
    def _alive(job: JobOut) -> bool:
        """Its process still runs (only knowable on the host that started it)."""
        if job.pid is None or job.host != socket.gethostname():
            return False
        try:
            os.kill(job.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _tail(self, job_id: str) -> str:
        path = self.folder / f"{job_id}.log"
        if not path.is_file():
            return ""
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            text = _ANSI.sub("", f.read().decode("utf-8", "replace"))
        lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
        return lines[-1] if lines else ""

    def get(self, job_id: str) -> JobOut | None:
        path = self.folder / f"{job_id}.json"
        if not _ID.match(job_id) or not path.is_file():
            return None
        job = JobOut.model_validate_json(path.read_text())
        if job.state is JobState.RUNNING and job.id != self._running_id and not self._alive(job):
            job.state = JobState.UNKNOWN  # its server stopped before it ended
        return job.model_copy(update={"progress": self._tail(job_id)})

    def latest(self) -> JobOut | None:
        jobs = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if self.folder.is_dir() else []
        return self.get(jobs[-1].stem) if jobs else None

