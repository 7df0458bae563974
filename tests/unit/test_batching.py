"""The micro-batcher on a tiny random student: requests that wait together share a model call, an awaiting
request holds no thread, and a request whose caller went away is dropped without stopping the others."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.model.batching import MicroBatcher
from bot.model.encoder import SentenceEncoder
from bot.model.nlu import IntentClassifier
from bot.model.threads import is_model_thread
from tests.helpers.waiting import poll

TEXTS = ["where is my order", "cancel it please", "hello there", "refund my money", "my parcel is late"]
LABELS = ["a", "b", "c"]


class Gated(IntentClassifier):
    """The tiny student, whose first model call waits for `gate`: requests queue up meanwhile. Records the
    size of every call."""

    def __init__(self, student: IntentClassifier):
        super().__init__(student.model, student.tokenizer, student.labels, student.temperature,
                         student.max_length)
        self.entered, self.gate, self.calls = threading.Event(), threading.Event(), []

    def predict_many(self, texts, top_k=5):
        if not self.calls:
            self.entered.set()
            self.gate.wait(10)
        self.calls.append(len(texts))
        return super().predict_many(texts, top_k)


@pytest.fixture
def student(tiny_student_dir) -> IntentClassifier:
    encoder = SentenceEncoder.load(tiny_student_dir)
    torch.manual_seed(0)
    return IntentClassifier.from_torch(encoder, torch.nn.Linear(encoder.dim, len(LABELS)), LABELS)


def test_awaiting_requests_share_a_call_and_get_their_own_predictions(student):
    gated, batcher = Gated(student), MicroBatcher(max_batch=32)

    async def scenario():
        first = asyncio.ensure_future(batcher.predict_async(gated, "hi"))
        await asyncio.to_thread(gated.entered.wait, 10)  # the first call runs and waits at the gate
        threads = threading.active_count()
        rest = [asyncio.ensure_future(batcher.predict_async(gated, text)) for text in TEXTS]
        await asyncio.sleep(0.1)  # they queue behind it
        assert threading.active_count() == threads  # five more waiting requests, not one thread more
        gated.gate.set()
        return await first, await asyncio.gather(*rest)

    try:
        _first, predictions = asyncio.run(scenario())
    finally:
        batcher.close()
    assert gated.calls == [1, len(TEXTS)]
    for text, prediction in zip(TEXTS, predictions, strict=True):
        alone = student.predict(text)
        assert prediction.top.name == alone.top.name
        np.testing.assert_allclose(prediction.embedding, alone.embedding, rtol=1e-4, atol=1e-5)


def test_a_request_whose_caller_went_away_is_dropped_and_the_others_are_answered(student):
    gated, batcher = Gated(student), MicroBatcher(max_batch=32)

    async def scenario():
        first = asyncio.ensure_future(batcher.predict_async(gated, "hi"))
        await asyncio.to_thread(gated.entered.wait, 10)
        gone = asyncio.ensure_future(batcher.predict_async(gated, "the visitor closed the tab"))
        kept = asyncio.ensure_future(batcher.predict_async(gated, TEXTS[0]))
        await asyncio.sleep(0.05)
        gone.cancel()
        for _ in range(5):  # the cancellation reaches the batcher's future on a later turn of the loop
            await asyncio.sleep(0)
        gated.gate.set()
        return await first, await kept, gone

    try:
        _first, kept, gone = asyncio.run(scenario())
        assert gone.cancelled() and gated.calls == [1, 1]  # only the request still awaited was run
        assert kept.top.name == student.predict(TEXTS[0]).top.name
        assert batcher.predict(gated, TEXTS[1]).top.name == student.predict(TEXTS[1]).top.name  # still serving
    finally:
        batcher.close()


def test_the_batcher_thread_is_named_as_the_models():
    batcher = MicroBatcher()
    comm = Path(f"/proc/self/task/{batcher.worker.native_id}/comm")
    try:
        poll(lambda: is_model_thread(comm.read_text().strip()), timeout=10, what="the batcher thread's name")
    finally:
        batcher.close()
