"""Typed FastAPI dependencies: what a route needs (the store, the chat service, the event bus, the settings,
the served model, the agent behind a token), declared in its signature rather than looked up untyped on
`request.app.state`. One `Services` object per app holds them, so two apps in one process share nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import anyio
from fastapi import Depends, Header, HTTPException, Query
from fastapi.requests import HTTPConnection
from sqlalchemy.orm import Session, sessionmaker

from bot.api.redistill_job import RedistillJobs
from bot.api.sockets import SocketRegistry
from bot.conversation.dialogue import ChatService
from bot.desk import agents
from bot.infra.events import EventBus
from bot.infra.settings import Settings
from bot.infra.store import ConversationStatus, Role
from bot.model.reload import ModelHolder
from bot.model.served_model import ServedModel

LOGIN_WORKERS = 2
"""Password checks (argon2: deliberately slow) run at most this many at once, in their own threads."""


@dataclass
class LoginGuard:
    """What keeps password checks from being guessed or from starving the server: the failure throttle, at
    most `slots` checks at once, and their own threads (not the pool that chat turns use)."""

    throttle: agents.LoginThrottle
    slots: anyio.Semaphore
    threads: anyio.CapacityLimiter


@dataclass
class Services:
    """Everything one app's routes share, made by its lifespan."""

    settings: Settings
    holder: ModelHolder
    sessions: sessionmaker[Session]
    chat: ChatService
    bus: EventBus
    sockets: SocketRegistry
    jobs: RedistillJobs
    login_guard: LoginGuard | None = None
    """Made on first use, inside the server's event loop."""


def services_of(connection: HTTPConnection) -> Services:
    """For code that is not a route signature (a WebSocket's helpers)."""
    return connection.app.state.services


async def get_services(connection: HTTPConnection) -> Services:
    return services_of(connection)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_sessions(services: ServicesDep) -> sessionmaker[Session]:
    return services.sessions


def get_session(services: ServicesDep) -> Iterator[Session]:
    """A session for reading, closed as soon as the route returns (scope "function" below), not once the
    response has been sent: a slow client must not hold one of the pool's few connections. Routes that write
    open their own transaction (`SessionsDep`), so it commits before their events are published."""
    with services.sessions() as db:
        yield db


async def get_chat(services: ServicesDep) -> ChatService:
    return services.chat


async def get_bus(services: ServicesDep) -> EventBus:
    return services.bus


async def get_model(services: ServicesDep) -> ServedModel:
    """The model served now; a request keeps the one it started with even if a reload swaps it meanwhile."""
    return services.holder.model


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
ChatDep = Annotated[ChatService, Depends(get_chat)]
BusDep = Annotated[EventBus, Depends(get_bus)]
ModelDep = Annotated[ServedModel, Depends(get_model)]


def bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


@dataclass(frozen=True)
class AgentIdentity:
    """The agent a request's token belongs to, read once per request."""

    id: int
    username: str
    display_name: str
    token: str
    role: Role


def current_agent(sessions: SessionsDep,
                  authorization: Annotated[str | None, Header(description="Bearer <agent token>")] = None
                  ) -> AgentIdentity:
    token = bearer(authorization)
    if token is None:
        raise HTTPException(401, "agent endpoints need a login token (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})
    with sessions.begin() as db:  # committed before any 401: an expired token is deleted
        agent = agents.agent_for_token(db, token)
        found = agent and AgentIdentity(agent.id, agent.username, agent.display_name, token, agent.role)
    if not found:
        raise HTTPException(401, "invalid or expired agent token; log in again", headers={"WWW-Authenticate": "Bearer"})
    return found


CurrentAgent = Annotated[AgentIdentity, Depends(current_agent)]


async def current_admin(me: CurrentAgent) -> AgentIdentity:
    if me.role is not Role.ADMIN:
        raise HTTPException(403, "only an admin may approve or reject proposals and corrections")
    return me


CurrentAdmin = Annotated[AgentIdentity, Depends(current_admin)]


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


@dataclass
class InboxFilters:
    """The inbox's filters, as query parameters: the inbox and the export take the same ones."""

    status: ConversationStatus | None = None
    low_confidence: Annotated[bool | None, Query(description="Only conversations with (true) or without "
                                                             "(false) a low-confidence visitor message.")] = None
    intent: Annotated[str | None, Query(description="Only conversations with a visitor message of this "
                                                    "intent.")] = None
    thumbs_down: Annotated[bool | None, Query(description="Only conversations with (or without) a "
                                                          "thumbs-down.")] = None
    since: Annotated[datetime | None, Query(description="Started at or after (ISO date or time, UTC).")] = None
    until: Annotated[datetime | None, Query(description="Started before (ISO date or time, UTC).")] = None
    q: Annotated[str | None, Query(max_length=200, description="Text any message contains.")] = None
    reviewed: bool | None = None
    mine: Annotated[bool, Query(description="Only the conversations this agent has.")] = False

    def criteria(self, me: AgentIdentity, low_confidence: float) -> dict:
        """desk.find_conversations's keyword arguments."""
        return {"status": self.status, "intent": self.intent, "thumbs_down": self.thumbs_down,
                "since": _utc(self.since), "until": _utc(self.until), "text": self.q, "reviewed": self.reviewed,
                "agent_id": me.id if self.mine else None, "low_confidence": self.low_confidence,
                "threshold": low_confidence}


InboxFiltersDep = Annotated[InboxFilters, Depends()]
