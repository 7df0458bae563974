"""Hot reload: serve a newly published model without a restart and without failing a request.

The registry's `current` link is switched atomically by the publisher; we poll where it points (a
shared volume may not deliver file events), load the new version beside the old one in a worker
thread, then swap one reference. A turn in flight keeps the model it started with."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from bot import telemetry
from bot.artifact import CURRENT
from bot.served_model import ServedModel


class ModelHolder:
    def __init__(self, path: Path, backend: str, clarify_margin: float | None = None, threads: int = 0):
        self.path, self.backend, self.clarify_margin, self.threads = Path(path), backend, clarify_margin, threads
        self.target = self._target()
        self.model = self._load(self.target)
        telemetry.serving(self.model.version, self.model.classifier.backend)

    def _load(self, target: str | None = None) -> ServedModel:
        """The version `target` (else what the path names), with the operator's clarify margin in place of the
        artifact's when one is set."""
        model = ServedModel.load(self.path / target if target else self.path, self.backend, self.threads)
        if self.clarify_margin is None:
            return model
        return dataclasses.replace(model, policy=dataclasses.replace(model.policy, clarify_margin=self.clarify_margin))

    def _target(self) -> str | None:
        """Where `current` points; None when serving one artifact folder rather than a registry."""
        link = self.path / CURRENT
        return os.readlink(link) if link.is_symlink() else None

    async def check(self) -> bool:
        """Load and swap in the current version if it changed; a broken version is logged and skipped."""
        target = self._target()
        if target is None or target == self.target:
            return False
        try:
            model = await run_in_threadpool(self._load, target)
        except Exception:
            telemetry.log.exception("model reload failed; still serving %s", self.model.version,
                                    extra={"target": target})
            telemetry.MODEL_RELOADS.labels("failed").inc()
            self.target = target  # do not retry the same broken version on every poll
            return False
        previous, self.model, self.target = self.model, model, target
        telemetry.serving(model.version, model.classifier.backend)
        telemetry.MODEL_RELOADS.labels("done").inc()
        telemetry.log.info("model reloaded", extra={"previous": previous.version, "version": model.version})
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.check()
