"""Micro-batching of predictions: requests served at the same time share one model call.

Requests queue their message and wait (a request thread with `predict`, a coroutine with `predict_async`);
one worker thread takes everything queued (up to `max_batch`) and runs it as a batch. Nothing waits for a
batch to fill, so a lone request pays no extra latency, while under load the model runs far fewer, larger
calls and no two calls fight over the cores."""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future

from bot.model.nlu import IntentClassifier, Prediction
from bot.model.threads import MODEL_THREAD_PREFIX, name_this_thread

_STOP = object()


class MicroBatcher:
    def __init__(self, max_batch: int = 32):
        self.max_batch = max_batch
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.worker = threading.Thread(target=self._work, name="micro-batcher", daemon=True)
        self.worker.start()

    def predict(self, classifier: IntentClassifier, text: str) -> Prediction:
        """Blocks the calling thread until the prediction is ready."""
        future: Future = Future()
        self.queue.put((classifier, text, future))
        return future.result()

    async def predict_async(self, classifier: IntentClassifier, text: str) -> Prediction:
        """Waits without holding a thread: a server's worker threads stay free for the turns' database work,
        and every request that arrived meanwhile can join the next batch."""
        future: Future = Future()
        self.queue.put((classifier, text, future))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self.queue.put(_STOP)
        self.worker.join(timeout=10)

    def _work(self) -> None:
        name_this_thread(MODEL_THREAD_PREFIX + "batcher")  # tokenises, runs the model, ranks: the model's CPU
        while True:
            items = [self.queue.get()]
            while len(items) < self.max_batch:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in items)
            # a request whose caller went away (cancelled) is dropped; the others can no longer be cancelled
            items = [item for item in items if item is not _STOP and item[2].set_running_or_notify_cancel()]
            by_model: dict[int, list] = {}
            for item in items:  # during a hot reload two models can be in use at once
                by_model.setdefault(id(item[0]), []).append(item)
            for group in by_model.values():
                self._run(group)
            if stop:
                return

    @staticmethod
    def _run(group: list) -> None:
        try:
            predictions = group[0][0].predict_many([text for _, text, _ in group])
        except Exception as exc:  # every waiting request learns of the failure
            for _, _, future in group:
                future.set_exception(exc)
            return
        for (_, _, future), prediction in zip(group, predictions):
            future.set_result(prediction)
