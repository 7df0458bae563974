"""Erasing a visitor's data on request (GDPR art. 17): their conversations with every message, note, correction
and feedback, and the ownership-proof failures counted against them. What redistillation harvested of their
words is in the job's work folder and the teacher-output cache, which the API does not mount: the erasure keeps
the texts' digests (never the texts) for the job to remove them there (`distill erase`, or its next run).

A trained model keeps no copy of a text: its weights are shaped by many messages and hold none of them
verbatim; the teacher-output cache does hold a vector per text, keyed by the text's SHA-256, which confirms
that a given text was seen and partly encodes it, so its entries are erased too."""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from bot.desk.desk import DeskError
from bot.infra.office_hours import CONTACT_EMAIL_SLOT
from bot.infra.store import Conversation, Correction, Erasure, Message, Note, OwnershipFailure, text_digests

log = logging.getLogger("distilbot.erasure")


class ErasureOut(BaseModel):
    id: int
    conversations: int
    messages: int
    notes: int
    corrections: int
    visitor_texts: int = Field(description="Visitor messages whose text the redistillation job will also remove "
                                           "from its harvested data and the teacher-output cache.")


def _matching(db: Session, conversation_id: str | None, customer_id: str | None, email: str | None) -> list[str]:
    where = []
    if conversation_id:
        where.append(Conversation.id == conversation_id)
    if customer_id:
        where.append(Conversation.customer_id == customer_id)
    if email:  # the shop's address for a verified customer, or one a visitor gave (a form's, an offline message's)
        wanted = email.strip().lower()
        where.append(or_(func.lower(Conversation.customer_email) == wanted,
                         *(func.lower(Conversation.slots[slot].as_string()) == wanted
                           for slot in ("email", CONTACT_EMAIL_SLOT))))
    if len(where) != 1:
        raise DeskError(422, "name exactly one of conversation_id, customer_id and email")
    return list(db.scalars(select(Conversation.id).where(where[0]).with_for_update()))


def erase(db: Session, admin_id: int, conversation_id: str | None = None, customer_id: str | None = None,
          email: str | None = None) -> ErasureOut:
    """Erase the conversations of one visitor: one conversation, or every conversation of a verified customer (by
    the shop's customer id, or the e-mail address the shop's page gave for them)."""
    ids = _matching(db, conversation_id, customer_id, email)
    if not ids:
        raise DeskError(404, "no conversation matches")
    senders = list(db.scalars(select(Conversation.sender).where(Conversation.id.in_(ids),
                                                                 Conversation.sender.is_not(None))))
    message_ids = select(Message.id).where(Message.conversation_id.in_(ids))
    visitor_texts = list(db.scalars(select(Message.text).where(Message.conversation_id.in_(ids),
                                                               Message.role == "user")))
    counts = {"messages": db.scalar(select(func.count()).where(Message.conversation_id.in_(ids))) or 0,
              "notes": db.scalar(select(func.count()).where(Note.conversation_id.in_(ids))) or 0,
              "corrections": db.scalar(select(func.count()).where(Correction.message_id.in_(message_ids))) or 0}
    db.execute(delete(Correction).where(Correction.message_id.in_(message_ids)))
    db.execute(delete(Note).where(Note.conversation_id.in_(ids)))
    db.execute(delete(Message).where(Message.conversation_id.in_(ids)))
    db.execute(delete(OwnershipFailure).where(OwnershipFailure.conversation_id.in_([*ids, *senders])))
    db.execute(delete(Conversation).where(Conversation.id.in_(ids)))
    digests = sorted({d for text in visitor_texts for d in text_digests(text)})
    record = Erasure(admin_id=admin_id, conversations=len(ids), messages=counts["messages"], digests=digests)
    db.add(record)
    db.flush()
    log.info("visitor data erased", extra={"erasure": record.id, "conversations": len(ids), **counts})
    return ErasureOut(id=record.id, conversations=len(ids), visitor_texts=len(visitor_texts), **counts)
