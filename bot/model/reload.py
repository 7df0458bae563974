"""Hot reload: serve a newly published model without a restart and without failing a request.

The registry's `current` link is switched atomically by the publisher; we poll it (a shared volume may not
deliver file events), load the new version beside the old one in a worker thread, then swap one reference.
A turn in flight keeps the model it started with. A version that does not load never takes a server down:
at start-up the newest older version that loads is served instead, and a failed reload keeps the old model
until `current` is switched again."""

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
from bot.model.served_model import ServedModel

log = logging.getLogger("distilbot.model")
MODEL_INFO = Gauge("distilbot_model_info", "The model being served (value 1)", ["version", "backend"])
MODEL_RELOADS = Counter("distilbot_model_reloads", "Hot reloads of a newly published model", ["outcome"])
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
        self.model, self.target = self._start()
        serving(self.model.version, self.model.classifier.backend)

    def _load(self, target: str | None = None) -> ServedModel:
        """The version `target` (else what the path names), with the operator's clarify margin in place of the
        artifact's when one is set."""
        model = ServedModel.load(self.path / target if target else self.path, self.backend, self.threads)
        if self.clarify_margin is None:
            return model
        return dataclasses.replace(model, policy=dataclasses.replace(model.policy, clarify_margin=self.clarify_margin))

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
        another version, or to the same one once it is repaired)."""
        link = self._link()
        if link is None or link == self.link:
            return False
        self.link = link
        if link.target == self.target:  # switched back to what is served (e.g. a rollback): nothing to load
            return False
        try:
            model = await run_in_threadpool(self._load, link.target)
        except Exception:
            log.exception("model reload failed; still serving %s", self.model.version,
                                    extra={"target": link.target})
            MODEL_RELOADS.labels("failed").inc()
            return False
        previous, self.model, self.target = self.model, model, link.target
        serving(model.version, model.classifier.backend)
        MODEL_RELOADS.labels("done").inc()
        log.info("model reloaded", extra={"previous": previous.version, "version": model.version})
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.check()
