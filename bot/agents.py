"""Support-agent accounts: argon2 password hashes, login tokens (only their SHA-256 is stored)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store import Agent, AgentToken

_hasher = PasswordHasher()
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
MIN_PASSWORD = 8


class AgentError(ValueError):
    """A username or password that cannot be used; the message says why."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_agent(db: Session, username: str, password: str, display_name: str | None = None) -> Agent:
    if not _USERNAME.match(username):
        raise AgentError(f"username {username!r}: 2–64 letters, digits or . _ @ -")
    if len(password) < MIN_PASSWORD:
        raise AgentError(f"password: at least {MIN_PASSWORD} characters")
    if db.scalar(select(Agent).where(Agent.username == username)) is not None:
        raise AgentError(f"username {username!r} is taken")
    agent = Agent(username=username, display_name=display_name or username, password_hash=_hasher.hash(password))
    db.add(agent)
    db.flush()
    return agent


def set_password(db: Session, username: str, password: str) -> Agent:
    agent = db.scalar(select(Agent).where(Agent.username == username))
    if agent is None:
        raise AgentError(f"no agent {username!r}")
    if len(password) < MIN_PASSWORD:
        raise AgentError(f"password: at least {MIN_PASSWORD} characters")
    agent.password_hash = _hasher.hash(password)
    return agent


def login(db: Session, username: str, password: str, lifetime: timedelta) -> tuple[Agent, str] | None:
    """The agent and a fresh token, or None for a wrong username or password (the caller cannot tell which)."""
    agent = db.scalar(select(Agent).where(Agent.username == username))
    try:
        if agent is None:
            _hasher.hash(password)  # same work either way, so timing does not reveal which usernames exist
            return None
        _hasher.verify(agent.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    token = secrets.token_urlsafe(32)
    db.add(AgentToken(token_hash=token_digest(token), agent_id=agent.id, expires_at=datetime.now(UTC) + lifetime))
    return agent, token


def agent_for_token(db: Session, token: str) -> Agent | None:
    row = db.get(AgentToken, token_digest(token))
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)  # SQLite drops tz
    if expires <= datetime.now(UTC):
        db.delete(row)
        return None
    return row.agent


def logout(db: Session, token: str) -> None:
    row = db.get(AgentToken, token_digest(token))
    if row is not None:
        db.delete(row)
