"""Support-agent accounts: argon2 password hashes, login tokens (only their SHA-256 is stored), roles,
disabling an account, and the throttle on failed logins.

Every function that ends logins returns the hashes of the tokens it removed (or ALL), so that the caller can
publish their revocation and open sockets on every replica close."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.infra.guards import rate_is_off
from bot.infra.store import Agent, AgentToken, Role

log = logging.getLogger("distilbot.agents")
_hasher = PasswordHasher()
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
MIN_PASSWORD = 8
ALL = None
"""Revoked: every token of the agent (what `publish_revocation` sends as token_hash null)."""


class AgentError(ValueError):
    """A username or password that cannot be used; the message says why."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AgentError(f"password: at least {MIN_PASSWORD} characters")


def _named(db: Session, username: str) -> Agent:
    agent = db.scalar(select(Agent).where(Agent.username == username))
    if agent is None:
        raise AgentError(f"no agent {username!r}")
    return agent


def create_agent(db: Session, username: str, password: str, display_name: str | None = None,
                 role: Role = Role.AGENT) -> Agent:
    """A new account. Only the CLI calls this: no API route makes accounts or admins."""
    if not _USERNAME.match(username):
        raise AgentError(f"username {username!r}: 2–64 letters, digits or . _ @ -")
    _check_password(password)
    if db.scalar(select(Agent).where(Agent.username == username)) is not None:
        raise AgentError(f"username {username!r} is taken")
    agent = Agent(username=username, display_name=display_name or username, password_hash=_hasher.hash(password),
                  role=role)
    db.add(agent)
    db.flush()
    return agent


def is_first_agent(db: Session) -> bool:
    return not db.scalar(select(func.count()).select_from(Agent))


def revoke_tokens(db: Session, agent_id: int, keep: str | None = None) -> list[str]:
    """Remove the agent's tokens (but the one whose hash is `keep`); their hashes."""
    hashes = list(db.scalars(select(AgentToken.token_hash).where(AgentToken.agent_id == agent_id,
                                                                  AgentToken.token_hash != (keep or ""))))
    if hashes:
        db.execute(delete(AgentToken).where(AgentToken.token_hash.in_(hashes)))
    return hashes


def set_password(db: Session, username: str, password: str) -> Agent:
    """An operator's reset (CLI): every login of the agent ends."""
    agent = _named(db, username)
    _check_password(password)
    agent.password_hash = _hasher.hash(password)
    revoke_tokens(db, agent.id)
    return agent


def change_password(db: Session, agent_id: int, current: str, new: str, token: str) -> list[str] | None:
    """The agent's own change: None when `current` is wrong; else the hashes of the agent's other tokens,
    now revoked (the token making the change keeps working)."""
    agent = db.get_one(Agent, agent_id)  # the signed-in agent: its row exists
    try:
        _hasher.verify(agent.password_hash, current)
    except (VerificationError, InvalidHashError):
        return None
    _check_password(new)
    agent.password_hash = _hasher.hash(new)
    return revoke_tokens(db, agent.id, keep=token_digest(token))


def set_disabled(db: Session, username: str, disabled: bool) -> Agent:
    """Disable (no login; every token revoked) or enable an account again."""
    agent = _named(db, username)
    if disabled:
        agent.disabled_at = agent.disabled_at or datetime.now(UTC)
        revoke_tokens(db, agent.id)
    else:
        agent.disabled_at = None
    return agent


def set_role(db: Session, username: str, role: Role) -> Agent:
    agent = _named(db, username)
    agent.role = role
    return agent


def login(db: Session, username: str, password: str, lifetime: timedelta) -> tuple[Agent, str] | None:
    """The agent and a fresh token, or None for a wrong username or password or a disabled account (the
    caller cannot tell which)."""
    agent = db.scalar(select(Agent).where(Agent.username == username))
    try:
        if agent is None:
            _hasher.hash(password)  # same work either way, so timing does not reveal which usernames exist
            return None
        _hasher.verify(agent.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if agent.disabled_at is not None:
        return None
    token = secrets.token_urlsafe(32)
    db.add(AgentToken(token_hash=token_digest(token), agent_id=agent.id, expires_at=datetime.now(UTC) + lifetime))
    return agent, token


def agent_for_token(db: Session, token: str) -> Agent | None:
    row = db.get(AgentToken, token_digest(token))
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)  # SQLite drops tz
    if expires <= datetime.now(UTC) or row.agent.disabled_at is not None:
        db.delete(row)
        return None
    return row.agent


def logout(db: Session, token: str) -> str | None:
    """End one login; the token's hash if it existed."""
    row = db.get(AgentToken, token_digest(token))
    if row is None:
        return None
    db.delete(row)
    return row.token_hash


class LoginThrottle:
    """Failed logins counted per username and per client address (e.g. 5 per 15 minutes); above that the
    login answers 429 without checking the password. Successful logins are not counted. The counts live in
    memory, or in Redis so that every replica sees them; when Redis fails, logins go on unthrottled (and it
    is logged): a Redis outage must not lock every agent out."""

    def __init__(self, rate: str, redis_url: str | None = None, max_connections: int = 20):
        self.rate = None if rate_is_off(rate) else parse(rate)
        if redis_url:  # a bounded pool whose calls give up after a second, as the rate limiter's
            from redis import asyncio as aioredis

            pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=max_connections, timeout=1,
                                                            socket_connect_timeout=1, socket_timeout=1)
            # limits types **options as scalars, but its Redis storages take (and document) a connection_pool
            storage = storage_from_string("async+" + redis_url, implementation="redispy",
                                          connection_pool=pool)  # type: ignore[arg-type]
        else:
            storage = storage_from_string("async+memory://")
        self.limiter = MovingWindowRateLimiter(storage)

    @staticmethod
    def _keys(username: str, client: str | None) -> list[tuple[str, str]]:
        return [("user", username.lower()), ("address", client or "unknown")]

    async def retry_after(self, username: str, client: str | None) -> int | None:
        """Seconds until the next attempt may be made, or None when it may be made now."""
        if self.rate is None:
            return None
        try:
            for kind, key in self._keys(username, client):
                if not await self.limiter.test(self.rate, "login-failures", kind, key):
                    stats = await self.limiter.get_window_stats(self.rate, "login-failures", kind, key)
                    return max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:
            log.warning("login throttle store unreachable; login not throttled", exc_info=True)
        return None

    async def failed(self, username: str, client: str | None) -> None:
        if self.rate is None:
            return
        try:
            for kind, key in self._keys(username, client):
                await self.limiter.hit(self.rate, "login-failures", kind, key)
        except Exception:
            log.warning("login throttle store unreachable; failure not counted", exc_info=True)
