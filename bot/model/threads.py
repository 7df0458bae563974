"""Names for the model's OS threads, so that `top -H`, py-spy and the load benchmark (tests/bench/load.py) can
tell the CPU the model uses from the rest of the server's.

CPython 3.11 does not name its threads for the OS, and onnxruntime's own pool threads have no Python side at
all; on Linux any thread of a process may rename another through /proc. Elsewhere this does nothing."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

MODEL_THREAD_PREFIX = "model-"
"""Every thread the model computes on is named with this prefix (at most 15 bytes in all, the kernel's limit)."""
_TASKS = Path("/proc/self/task")


def thread_ids() -> set[int]:
    """The OS ids of this process's threads (empty where /proc is not Linux's)."""
    with contextlib.suppress(OSError):
        return {int(entry.name) for entry in _TASKS.iterdir()}
    return set()


def name_thread(tid: int, name: str) -> None:
    with contextlib.suppress(OSError):
        (_TASKS / str(tid) / "comm").write_text(name[:15])


def name_this_thread(name: str) -> None:
    name_thread(threading.get_native_id(), name)


@contextlib.contextmanager
def naming_new_threads(name: str) -> Iterator[None]:
    """Threads started inside the block (onnxruntime's pool, started with its session) are given `name`. A thread
    another part of the process happens to start meanwhile is named too: the split is close, not exact."""
    before = thread_ids()
    yield
    for tid in thread_ids() - before:
        name_thread(tid, name)


def is_model_thread(comm: str) -> bool:
    return comm.startswith(MODEL_THREAD_PREFIX)

