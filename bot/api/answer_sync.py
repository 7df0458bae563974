"""Keeping every replica's answers current: each replica polls the store for a changed answers version (a
count and a maximum, cheap) and, when it changed, rebuilds its answer index from the approved revisions. The
replica where the change was made does so at once."""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from bot.api.deps import Services
from bot.desk import answers
from bot.model.templates import AnswerEdits

log = logging.getLogger("distilbot.answers")


def _edits(services: Services) -> AnswerEdits | None:
    """The store's edits, or None when they are the ones served (the cheap version query alone)."""
    with services.sessions() as db:
        if answers.edits_version(db) == services.holder.edits.version:
            return None
        return answers.served_edits(db)


def load_at_start(services: Services) -> None:
    edits = _edits(services)
    if edits is not None:
        services.holder.use_edits(edits)


async def refresh(services: Services) -> bool:
    edits = await run_in_threadpool(_edits, services)
    return edits is not None and await services.holder.update_edits(edits)


async def watch(services: Services, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await refresh(services)
        except Exception:  # the store is away for a moment: keep serving the answers we have
            log.exception("could not refresh the answers; still serving version %s", services.holder.edits.version)
