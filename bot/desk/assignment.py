"""Round-robin assignment: a conversation that starts waiting for a person is offered to the online agent who
was offered one longest ago (Chatwoot's and Intercom's default). An offer is not a lock: the conversation stays
waiting, shows under that agent's "Mine", and any agent may still take it.

An agent is online while a console of theirs holds a live socket: each API process marks the agents of its
sockets as seen when they connect and at every socket re-check (DISTILBOT_SOCKET_RECHECK_S), so an agent not
seen for ONLINE_FOR × that interval is offline, whichever replica their console is on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import nulls_first, select, update
from sqlalchemy.orm import Session

from bot.infra.store import Agent, utcnow

ONLINE_FOR = 3
"""Re-check intervals an agent stays online after their console was last seen."""


def mark_seen(db: Session, agent_ids: Iterable[int], now: datetime | None = None) -> None:
    ids = sorted(set(agent_ids))
    if ids:
        db.execute(update(Agent).where(Agent.id.in_(ids)).values(last_seen_at=now or utcnow())
                   .execution_options(synchronize_session=False))


def offer(db: Session, recheck_s: float, now: datetime | None = None) -> Agent | None:
    """The online agent whose turn it is, marked as offered now; None when nobody is online. On PostgreSQL two
    turns offering at once take different agents (the chosen row is locked, the other turn skips it)."""
    now = now or utcnow()
    chosen = db.scalar(select(Agent).where(Agent.disabled_at.is_(None),
                                           Agent.last_seen_at >= now - timedelta(seconds=ONLINE_FOR * recheck_s))
                       .order_by(nulls_first(Agent.last_offered_at.asc()), Agent.id).limit(1)
                       .with_for_update(skip_locked=True))
    if chosen is not None:
        chosen.last_offered_at = now
    return chosen
