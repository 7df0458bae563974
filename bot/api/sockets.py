"""This process's open WebSockets: caps on how many one client, conversation or agent may hold, and closing
the ones whose credentials went away (bot/api/routes/live.py serves them).

Close codes the server uses (a client reconnects after 1006/1011 and the like, not after these):

    1008  the auth message was missing or wrong
    1009  a frame over DISTILBOT_SOCKET_MAX_MESSAGE_BYTES
    4401  the token is no longer valid: logged out, revoked, expired, or the conversation is gone
    4429  too many: open sockets over a cap, or frames over DISTILBOT_SOCKET_MESSAGE_RATE

Counts are per process (a replica that dies takes its counts with it, and nothing is left to expire in a
shared store), so behind N replicas a client may hold up to N times a cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bot.desk import agents, assignment
from bot.infra import telemetry
from bot.infra.events import AGENTS, TokensRevoked
from bot.infra.store import Conversation


class CloseCode(enum.IntEnum):
    POLICY_VIOLATION = 1008
    TOO_BIG = 1009
    UNAUTHORIZED = 4401
    TOO_MANY = 4429


class Refused(Exception):
    """A socket the server closes: its close code and a reason (at most 123 bytes, the protocol's limit)."""

    def __init__(self, code: CloseCode, reason: str, metric: str):
        super().__init__(reason)
        self.code, self.reason, self.metric = code, reason, metric


@dataclass(frozen=True)
class Caps:
    per_client: int = 50
    per_conversation: int = 5
    per_agent: int = 10


_ids = itertools.count()


@dataclass(eq=False)
class OpenSocket:
    """One socket while it is open: who it counts against, and what the server may close it for."""

    client: str
    conversation_id: str | None = None
    token_hash: str | None = None
    """A visitor's: the SHA-256 of the session token it authenticated with."""
    agent_id: int | None = None
    agent_token: str | None = None
    """An agent's: the token, to check again (as agents.agent_for_token does on every request)."""
    key: str = field(default_factory=lambda: f"socket-{next(_ids)}")
    last_typing: float = float("-inf")
    closing: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    """Resolved with a Refused when the server closes the socket from outside its handler."""

    def close(self, refusal: Refused) -> None:
        if not self.closing.done():
            self.closing.set_result(refusal)


class SocketRegistry:
    def __init__(self, caps: Caps, frame_rate: str = "5/second;60/minute", recheck_s: float = 30):
        self.caps = caps
        self.sockets: set[OpenSocket] = set()
        self.clients: Counter[str] = Counter()
        self.conversations: Counter[str] = Counter()
        self.agents: Counter[int] = Counter()
        self.frame_rates = parse_many(frame_rate)
        self.frames = MovingWindowRateLimiter(MemoryStorage())
        self.recheck_s = recheck_s
        self._tasks: list[asyncio.Task] = []

    @contextlib.contextmanager
    def admitted(self, client: str) -> Iterator[OpenSocket]:
        """A new socket from `client`, counted until the block ends; Refused over the per-client cap (counted
        before authentication, so unauthenticated floods hit it too)."""
        if self.clients[client] >= self.caps.per_client:
            raise Refused(CloseCode.TOO_MANY, f"too many live sockets from your address (the limit is "
                                              f"{self.caps.per_client})", "per_client")
        entry = OpenSocket(client)
        self.clients[client] += 1
        self.sockets.add(entry)
        try:
            yield entry
        finally:
            self.sockets.discard(entry)
            _decrement(self.clients, client)
            if entry.conversation_id is not None:
                _decrement(self.conversations, entry.conversation_id)
            if entry.agent_id is not None:
                _decrement(self.agents, entry.agent_id)

    def claim_conversation(self, entry: OpenSocket, conversation_id: str, token_hash: str) -> None:
        if self.conversations[conversation_id] >= self.caps.per_conversation:
            raise Refused(CloseCode.TOO_MANY, f"too many live sockets for this conversation (the limit is "
                                              f"{self.caps.per_conversation})", "per_conversation")
        self.conversations[conversation_id] += 1
        entry.conversation_id, entry.token_hash = conversation_id, token_hash

    def claim_agent(self, entry: OpenSocket, agent_id: int, token: str) -> None:
        if self.agents[agent_id] >= self.caps.per_agent:
            raise Refused(CloseCode.TOO_MANY, f"too many live sockets for this agent (the limit is "
                                              f"{self.caps.per_agent})", "per_agent")
        self.agents[agent_id] += 1
        entry.agent_id, entry.agent_token = agent_id, token

    def frame_allowed(self, entry: OpenSocket) -> bool:
        """Count one frame the client sent; False once it is over any of the frame rates."""
        return all(self.frames.hit(rate, entry.key) for rate in self.frame_rates)

    def revoke(self, event: TokensRevoked) -> int:
        """Close the agent's sockets opened with the revoked token (or with any, when it names none)."""
        matching = [e for e in self.sockets if e.agent_id == event.agent_id
                    and (event.token_hash is None  # an agent's socket has its token (claim_agent sets both)
                         or (e.agent_token is not None and agents.token_digest(e.agent_token) == event.token_hash))]
        for entry in matching:
            entry.close(Refused(CloseCode.UNAUTHORIZED, "the agent's token was revoked; log in again", "revoked"))
        return len(matching)

    @staticmethod
    def _no_longer_valid(sessions, entries: list[OpenSocket]) -> list[OpenSocket]:
        """The entries whose agent token or visitor conversation (with its token) is gone. One query per
        distinct agent token and one per 500 conversations. The agents of the others are marked as seen
        (online, for round-robin assignment)."""
        with sessions.begin() as db:  # committed: agent_for_token deletes expired tokens
            valid_tokens = {token: agents.agent_for_token(db, token) is not None
                            for token in {e.agent_token for e in entries if e.agent_token}}
            # their consoles are open: online for round-robin assignment
            assignment.mark_seen(db, (e.agent_id for e in entries if e.agent_token and valid_tokens[e.agent_token]
                                      and e.agent_id is not None))
            wanted = sorted({e.conversation_id for e in entries if e.conversation_id})
            hashes = {}
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                hashes.update(db.execute(select(Conversation.id, Conversation.token_hash)
                                         .where(Conversation.id.in_(chunk))).tuples().all())
        return [e for e in entries
                if (e.agent_token and not valid_tokens[e.agent_token])
                or (e.conversation_id and hashes.get(e.conversation_id) != e.token_hash)]

    async def recheck(self, sessions) -> int:
        """Close every socket whose credentials are no longer valid; how many."""
        entries = [e for e in self.sockets if e.agent_token or e.conversation_id]
        if not entries:
            return 0
        gone = await run_in_threadpool(self._no_longer_valid, sessions, entries)
        for entry in gone:
            entry.close(Refused(CloseCode.UNAUTHORIZED, "this token or conversation is no longer valid",
                                "recheck"))
        return len(gone)

    async def _recheck_forever(self, sessions) -> None:
        while True:
            await asyncio.sleep(self.recheck_s)
            try:
                await self.recheck(sessions)
            except Exception as exc:  # the store is down: keep the sockets, try again next time
                telemetry.log.warning("socket recheck failed (%s); trying again in %g s",
                                      exc.__class__.__name__, self.recheck_s, exc_info=True)

    async def _follow_revocations(self, bus) -> None:
        while True:
            try:
                async with bus.subscribe(AGENTS) as events:
                    async for event in events:
                        try:
                            self.revoke(TokensRevoked.model_validate(event))
                        except ValidationError:
                            telemetry.log.warning("ignored a malformed event on the %s channel: %r", AGENTS, event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                telemetry.log.warning("revocation listener failed (%s); restarting", exc.__class__.__name__)
                await asyncio.sleep(1)

    def start(self, bus, sessions) -> None:
        """Background work: close sockets on revocation events, and re-check every `recheck_s`."""
        self._tasks = [asyncio.create_task(self._follow_revocations(bus), name="socket-revocations"),
                       asyncio.create_task(self._recheck_forever(sessions), name="socket-recheck")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _decrement(counter: Counter, key) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
