"""OS names for the model's threads (what `top -H`, py-spy and the load benchmark tell the model's CPU by)."""

from __future__ import annotations

import threading
from pathlib import Path

from bot.model.threads import MODEL_THREAD_PREFIX, is_model_thread, naming_new_threads


def comm(thread: threading.Thread) -> str:
    return Path(f"/proc/self/task/{thread.native_id}/comm").read_text().strip()


def test_threads_started_inside_the_block_are_named_and_the_others_are_not():
    stop = threading.Event()
    before = threading.Thread(target=stop.wait)
    before.start()
    with naming_new_threads(MODEL_THREAD_PREFIX + "onnx"):
        inside = threading.Thread(target=stop.wait)
        inside.start()
    after = threading.Thread(target=stop.wait)
    after.start()
    try:
        assert comm(inside) == "model-onnx" and is_model_thread(comm(inside))
        assert not is_model_thread(comm(before)) and not is_model_thread(comm(after))
        assert not is_model_thread(Path("/proc/self/comm").read_text().strip())  # the process keeps its name
    finally:
        stop.set()
        for thread in (before, inside, after):
            thread.join()
