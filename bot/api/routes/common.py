"""What every route module needs: the client's address, publishing events, counting turns, visitor errors."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from bot.conversation.dialogue import (
    IdentityRefused,
    NotAllowedNow,
    SessionForbidden,
    SessionNotFound,
    TooManyConversations,
    TurnResult,
)
from bot.conversation.policy import Decision
from bot.desk.desk import DeskError
from bot.infra import telemetry
from bot.infra.events import Event, EventBus
from bot.infra.guards import client_key

T = TypeVar("T")


def client_address(request: Request) -> str:
    """The visitor's address as the limits count it: the socket's peer, or what a trusted proxy says
    (DISTILBOT_TRUSTED_PROXIES); an IPv6 client by its /64."""
    return client_key(request.client.host if request.client else None)


async def publish(bus: EventBus, events: list[Event]) -> None:
    await bus.publish_all(events)


def in_transaction(sessions: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """`work(db)` in one transaction; a DeskError becomes the HTTP error it names."""
    try:
        with sessions.begin() as db:
            return work(db)
    except DeskError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def count_turn(turn: TurnResult) -> None:
    telemetry.DECISIONS.labels(turn.decision.value).inc()
    telemetry.INTENTS.labels(turn.prediction.top.name).inc()
    if turn.decision is Decision.HANDOFF:
        telemetry.HANDOFFS.inc()


@contextmanager
def visitor_errors():
    """The visitor-side exceptions as HTTP errors with their message."""
    try:
        yield
    except SessionNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except (SessionForbidden, IdentityRefused) as exc:
        raise HTTPException(403, str(exc)) from None
    except TooManyConversations as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": "3600"}) from None
    except NotAllowedNow as exc:
        raise HTTPException(409, str(exc)) from None
