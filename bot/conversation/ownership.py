"""Who may learn about or act on an order: only a visitor who proved they own it.

Two proofs, as Intercom and Zendesk take them:

- the host site vouches for its logged-in customer (identity verification): the page passes the customer's
  id and an HMAC-SHA256 of it, keyed with a secret only the shop's server and the bot know; the order's
  `customer_id` must be that id;
- an anonymous visitor gives the e-mail address on the order.

A wrong pair and an unknown order look the same to the visitor. Failed tries are stored; after
`MAX_FAILURES` within `FAILURE_WINDOW` in one conversation, or on one order from any conversation, the bot
stops checking and hands the conversation to a person.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.infra.store import Order, OwnershipFailure, utcnow

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(hours=1)
KEEP_FAILURES = timedelta(days=7)
"""Failed tries are kept this long (for agents who look into an attack), then deleted."""
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class Owner:
    """What the visitor has shown so far: a verified customer id, or an e-mail address they typed."""

    customer_id: str | None = None
    email: str | None = None


def identity_hash(secret: str, user_id: str) -> str:
    """What the shop's server computes for its logged-in customer (hex HMAC-SHA256 of the id)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def identity_is_valid(secret: str, user_id: str, user_hash: str) -> bool:
    return hmac.compare_digest(identity_hash(secret, user_id), user_hash.strip().lower())


def normalise_email(value: object) -> str | None:
    """The e-mail address a message gives (a whole message may be just the address, or name it)."""
    if not isinstance(value, str):
        return None
    match = _EMAIL.search(value)
    return match.group(0).lower() if match else None


def owned_order(db: Session, order_id: str | None, owner: Owner, lock: bool = False) -> Order | None:
    """The order if `owner` proved it is theirs, else None (whether it exists or not). `lock` takes the row
    lock a change needs (PostgreSQL; SQLite writes one at a time anyway)."""
    if not order_id:
        return None
    order = db.get(Order, order_id, with_for_update=lock or None)
    if order is None:
        return None
    if owner.customer_id is not None:
        return order if order.customer_id == owner.customer_id else None
    if owner.email is not None and hmac.compare_digest(order.email.lower().encode(), owner.email.lower().encode()):
        return order
    return None


def failures(db: Session, conversation_id: str, order_id: str | None) -> int:
    """The larger of this conversation's and this order's failed tries within the window (`order_id` None:
    the conversation's alone)."""
    since = utcnow() - FAILURE_WINDOW
    recent = select(func.count()).select_from(OwnershipFailure).where(OwnershipFailure.created_at >= since)
    pending = [row for row in db.new if isinstance(row, OwnershipFailure)]  # this turn's, not yet written
    counts = [(db.scalar(recent.where(OwnershipFailure.conversation_id == conversation_id)) or 0)
              + sum(row.conversation_id == conversation_id for row in pending)]
    if order_id:
        counts.append((db.scalar(recent.where(OwnershipFailure.order_id == order_id)) or 0)
                      + sum(row.order_id == order_id for row in pending))
    return max(counts)


def locked_out(db: Session, conversation_id: str, order_id: str | None, per_order: bool = True) -> bool:
    """Out of tries; `per_order` False counts only the conversation's own (a verified customer's)."""
    return failures(db, conversation_id, order_id if per_order else None) >= MAX_FAILURES


def record_failure(db: Session, conversation_id: str, order_id: str) -> bool:
    """Count a failed try; True when it was the last one allowed (the caller hands off)."""
    before = failures(db, conversation_id, order_id)
    db.execute(delete(OwnershipFailure).where(OwnershipFailure.created_at < utcnow() - KEEP_FAILURES))
    db.add(OwnershipFailure(conversation_id=conversation_id, order_id=order_id))
    return before + 1 >= MAX_FAILURES
