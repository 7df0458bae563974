"""Canned replies: ready-made replies an agent inserts in the reply box by typing `/` and a shortcut, with
`{slot}` placeholders filled from the conversation (its slots, the answers' slot defaults, and `{agent}`, the
agent's display name). Shared replies are kept by admins; each agent keeps their own, which win over a shared
one of the same shortcut. Placeholders are only ever `{name}` (bot.model.templates)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.desk.desk import DeskError, flush_unique
from bot.infra.store import Agent, CannedReply, Conversation, Role
from bot.model.templates import PlaceholderError, placeholders, render


class CannedOut(BaseModel):
    id: int
    shortcut: str
    text: str = Field(description="As written, with its {slot} placeholders.")
    shared: bool
    filled: str | None = Field(None, description="The text with the conversation's values, when listed for one.")


def _view(row: CannedReply, values: dict[str, str] | None = None) -> CannedOut:
    return CannedOut(id=row.id, shortcut=row.shortcut, text=row.text, shared=row.owner_id is None,
                     filled=render(row.text, values) if values is not None else None)


def visible(db: Session, agent_id: int) -> list[CannedReply]:
    """The shared replies and the agent's own; of two with one shortcut, the agent's."""
    rows = db.scalars(select(CannedReply).where(or_(CannedReply.owner_id.is_(None), CannedReply.owner_id == agent_id))
                      .order_by(CannedReply.shortcut, CannedReply.owner_id.is_(None)))
    chosen: dict[str, CannedReply] = {}
    for row in rows:
        chosen.setdefault(row.shortcut, row)
    return list(chosen.values())


def listed(db: Session, agent: Agent, conversation: Conversation | None, defaults: dict[str, str]) -> list[CannedOut]:
    """The agent's replies; for a conversation, each also filled with its values."""
    if conversation is None:
        return [_view(row) for row in visible(db, agent.id)]
    values = {**defaults, **{k: str(v) for k, v in (conversation.slots or {}).items()
                             if v is not None and k != "requested_slot"}, "agent": agent.display_name}
    return [_view(row, values) for row in visible(db, agent.id)]


def _check_text(text: str) -> None:
    try:
        placeholders(text)
    except PlaceholderError as exc:
        raise DeskError(422, f"text: {exc}") from None


def _flush(db: Session, shortcut: str) -> None:
    flush_unique(db, f"there is a canned reply /{shortcut} already")


def create(db: Session, agent: Agent, shortcut: str, text: str, shared: bool) -> CannedOut:
    """A reply of the agent's own, or (admins only) a shared one."""
    if shared and agent.role is not Role.ADMIN:
        raise DeskError(403, "only an admin may add shared canned replies; add your own instead")
    _check_text(text)
    row = CannedReply(shortcut=shortcut, text=text, owner_id=None if shared else agent.id, updated_by=agent.id,
                      updated_at=datetime.now(UTC))
    db.add(row)
    _flush(db, shortcut)
    return _view(row)


def _editable(db: Session, agent: Agent, reply_id: int) -> CannedReply:
    row = db.get(CannedReply, reply_id)
    if row is None or row.owner_id not in (None, agent.id):
        raise DeskError(404, f"no canned reply {reply_id}")
    if row.owner_id is None and agent.role is not Role.ADMIN:
        raise DeskError(403, "only an admin may change shared canned replies")
    return row


def edit(db: Session, agent: Agent, reply_id: int, shortcut: str, text: str) -> CannedOut:
    row = _editable(db, agent, reply_id)
    _check_text(text)
    row.shortcut, row.text, row.updated_by, row.updated_at = shortcut, text, agent.id, datetime.now(UTC)
    _flush(db, shortcut)
    return _view(row)


def delete(db: Session, agent: Agent, reply_id: int) -> None:
    db.delete(_editable(db, agent, reply_id))
