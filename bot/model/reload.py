"""Hot reload: serve a newly published model without a restart and without failing a request.

The registry's `current` link is switched atomically by the publisher; we poll it (a shared volume may not
deliver file events), load the new version beside the old one in a worker thread, then swap one reference.
A turn in flight keeps the model it started with. A version that does not load never takes a server down:
at start-up the newest older version that loads is served instead, and a failed reload keeps the old model
until `current` is switched again.

Answers changed in the console (AnswerEdits) are laid over whichever version is served: the answer index is
rebuilt with the served student's own embeddings, so a changed answer is served without redistillation."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from pathlib import Path
from typing import NamedTuple

from prometheus_client import Counter, Gauge
from starlette.concurrency import run_in_threadpool

from bot.model.artifact import CURRENT, Registry
from bot.model.nlu import Backend
from bot.model.retriever import TemplateRetriever
from bot.model.served_model import ServedModel
from bot.model.templates import AnswerEdits, TemplateBook

log = logging.getLogger("distilbot.model")
MODEL_INFO = Gauge("distilbot_model_info", "The model being served (value 1)", ["version", "backend"])
MODEL_RELOADS = Counter("distilbot_model_reloads", "Hot reloads of a newly published model", ["outcome"])
ANSWER_UPDATES = Counter("distilbot_answer_updates", "Answer indexes rebuilt because answers changed in the console")
MODEL_FALLBACKS = Counter("distilbot_model_fallbacks", "Start-ups that serve an older version because the "
                          "registry's current one failed to load")


def serving(version: str, backend: str) -> None:
    MODEL_INFO.clear()
    MODEL_INFO.labels(version, backend).set(1)


class Link(NamedTuple):
    """Where `current` points, and which link that is: switching again to the same name makes a new link
    (new inode and time), so a repaired version switched to again is looked at again."""

    target: str
    inode: int
    mtime_ns: int


class ModelHolder:
    def __init__(self, path: Path, backend: Backend, clarify_margin: float | None = None, threads: int = 0):
        self.path, self.backend, self.clarify_margin, self.threads = Path(path), backend, clarify_margin, threads
        self.link = self._link()
        self.edits = AnswerEdits()
        self.loaded, self.target = self._start()
        self.model = self.loaded
        """What is served: the loaded version with the answer edits laid over it."""
        self._swap = asyncio.Lock()
        serving(self.model.version, self.model.classifier.backend)

    def _load(self, target: str | None = None) -> ServedModel:
        """The version `target` (else what the path names), with the operator's clarify margin in place of the
        artifact's when one is set."""
        model = ServedModel.load(self.path / target if target else self.path, self.backend, self.threads)
        if self.clarify_margin is None:
            return model
        return dataclasses.replace(model, policy=dataclasses.replace(model.policy, clarify_margin=self.clarify_margin))

    @property
    def own_book(self) -> TemplateBook:
        """The served version's own answer templates, before the console's edits: the seed they start from."""
        return self.loaded.retriever.book

    @staticmethod
    def _edited(model: ServedModel, edits: AnswerEdits) -> ServedModel:
        """`model` answering with `edits` laid over its own templates, the index embedded by its own student."""
        if not edits.templates and not edits.retired:
            return model
        book = edits.apply(model.retriever.book)
        return dataclasses.replace(model, retriever=TemplateRetriever.build(book, model.classifier))

    def use_edits(self, edits: AnswerEdits) -> None:
        """Serve `edits` from now on (at start-up, before any request)."""
        self.model, self.edits = self._edited(self.loaded, edits), edits

    async def update_edits(self, edits: AnswerEdits) -> bool:
        """Serve `edits` if they differ from those served: the index is rebuilt in a worker thread and swapped
        in as one reference, so a turn in flight keeps the answers it started with."""
        async with self._swap:
            if edits.version <= self.edits.version:  # the same, or older than what a quicker refresh put in
                return False
            self.model = await run_in_threadpool(self._edited, self.loaded, edits)
            self.edits = edits
            ANSWER_UPDATES.inc()
            log.info("answers updated", extra={"answers_version": list(edits.version)})
            return True

    def _link(self) -> Link | None:
        """The registry's `current` link now; None when serving one artifact folder rather than a registry."""
        link = self.path / CURRENT
        try:
            info = os.lstat(link)
            return Link(os.readlink(link), info.st_ino, info.st_mtime_ns)
        except OSError:  # no `current`, or not a link
            return None

    def _start(self) -> tuple[ServedModel, str | None]:
        """What `current` names; when that fails to load, the newest version before it that loads (logged and
        counted), so one broken publish cannot keep replicas from starting. Versions after `current` are
        not tried: they are the ones an operator rolled back from."""
        target = self.link.target if self.link else None
        try:
            return self._load(target), target
        except Exception as exc:
            if target is None:
                raise
            failure = exc
        log.error("current model %s failed to load: %r; trying older versions", target, failure,
                            exc_info=failure)
        versions = Registry(self.path).versions()
        older = versions[:versions.index(target)] if target in versions else versions
        for version in reversed(older):
            try:
                model = self._load(version)
            except Exception as exc:
                log.error("model %s failed to load too: %r", version, exc)
                continue
            MODEL_FALLBACKS.inc()
            log.error("serving %s instead of current %s, which fails to load", version, target,
                                extra={"version": version, "current": target})
            return model, version
        raise failure

    async def check(self) -> bool:
        """Load and swap in what `current` names when the link changed since the last look. A version that
        fails to load is logged and counted and not tried again until `current` is switched again (to
        another version, or to the same one once it is repaired). The link is read under the swap's lock, so a
        caller that finds a load in flight (the periodic watch's) returns only once it is served."""
        async with self._swap:
            link = self._link()
            if link is None or link == self.link:
                return False
            self.link = link
            if link.target == self.target:  # switched back to what is served (e.g. a rollback): nothing to load
                return False
            try:
                loaded = await run_in_threadpool(self._load, link.target)
                model = await run_in_threadpool(self._edited, loaded, self.edits)
            except Exception:
                log.exception("model reload failed; still serving %s", self.model.version,
                              extra={"target": link.target})
                MODEL_RELOADS.labels("failed").inc()
                return False
            previous, self.loaded, self.model, self.target = self.model, loaded, model, link.target
        serving(model.version, model.classifier.backend)
        MODEL_RELOADS.labels("done").inc()
        log.info("model reloaded", extra={"previous": previous.version, "version": model.version})
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.check()
