"""WebSockets for live events: a visitor's conversation (agent replies, typing, status) and the agents'
desk (every conversation's messages and status changes).

A socket first sends `{"type": "auth", "token": "…"}` (a token in the URL would end up in access logs);
the server answers `{"type": "ready"}` once it listens, then streams events as JSON. Clients may send
`{"type": "typing"}` (agents add "conversation_id") and `{"type": "ping"}`.

Limits (bot/api/sockets.py has the close codes): open sockets per client address, conversation and agent
(4429); frames of at most DISTILBOT_SOCKET_MAX_MESSAGE_BYTES (1009); frames at most
DISTILBOT_SOCKET_MESSAGE_RATE (4429), and typing passed on at most once a second (more is dropped, as
clients send it on every key press). A socket whose token is revoked or no longer valid is closed (4401).
Before closing, the server sends `{"type": "error", "detail": "…"}` with the same reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnected

from bot.api.deps import services_of
from bot.api.sockets import CloseCode, OpenSocket, Refused
from bot.conversation.dialogue import ChatService, SessionForbidden, SessionNotFound
from bot.desk import agents, assignment
from bot.infra import telemetry
from bot.infra.events import DESK, conversation_channel
from bot.infra.guards import client_key

router = APIRouter()
AUTH_TIMEOUT_S = 10
TYPING_EVERY_S = 1.0
_CONVERSATION_ID = re.compile(r"^[0-9a-f]{32}$")


def client_address(socket: WebSocket) -> str:
    """The client's address as the rate limit sees it (uvicorn sets it from X-Forwarded-For only for a
    trusted proxy)."""
    return client_key(socket.client.host if socket.client else None)


async def _auth_token(socket: WebSocket) -> str | None:
    try:
        first = await asyncio.wait_for(socket.receive_json(), AUTH_TIMEOUT_S)
    except (TimeoutError, ValueError, KeyError, WebSocketDisconnect):
        return None
    token = first.get("token") if isinstance(first, dict) and first.get("type") == "auth" else None
    return token if isinstance(token, str) else None


async def _close(socket: WebSocket, refusal: Refused) -> None:
    telemetry.LIVE_CLOSED.labels(refusal.metric).inc()
    with contextlib.suppress(Exception):  # the client may be gone already
        await socket.send_json({"type": "error", "detail": refusal.reason})
        await socket.close(refusal.code, refusal.reason)


def _too_big(limit: int) -> Refused:
    return Refused(CloseCode.TOO_BIG, f"frames are limited to {limit} bytes", "too_big")


async def _receive_frames(socket: WebSocket, entry: OpenSocket, on_message) -> Refused | None:
    """The client's frames to `on_message` (pings answered here) until it leaves (None) or breaks a limit."""
    services = services_of(socket)
    limit = services.settings.socket_max_message_bytes
    while True:
        frame = await socket.receive()
        if frame["type"] == "websocket.disconnect":
            return None
        text = frame.get("text")
        data = text if text is not None else frame.get("bytes") or b""
        if len(data.encode() if isinstance(data, str) else data) > limit:  # when the server's own cap is higher
            return _too_big(limit)
        if not services.sockets.frame_allowed(entry):
            return Refused(CloseCode.TOO_MANY, "too many messages on this socket; slow down", "frame_rate")
        try:
            message = json.loads(data)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if message.get("type") == "ping":
            await socket.send_json({"type": "pong"})
        elif message.get("type") == "typing":
            now = time.monotonic()
            if now - entry.last_typing < TYPING_EVERY_S:
                telemetry.LIVE_FRAMES_DROPPED.inc()
                continue
            entry.last_typing = now
            await on_message(message)


def client_left(error: BaseException | None) -> bool:
    """Whether a task ended because the client went away (a closed or broken connection); any other error is
    a fault of ours and is raised, to be logged, rather than taken for a disconnect."""
    return isinstance(error, WebSocketDisconnect | WebSocketDisconnected | OSError)


async def _stream(socket: WebSocket, entry: OpenSocket, channels: tuple[str, ...], kind: str, on_message) -> None:
    """Forward bus events to the socket and the socket's frames to `on_message`, until the client leaves, it
    breaks a limit, or the server closes it (entry.closing)."""
    telemetry.LIVE_CONNECTIONS.labels(kind).inc()
    try:
        async with services_of(socket).bus.subscribe(*channels) as events:
            await socket.send_json({"type": "ready"})

            async def forward():
                async for event in events:
                    await socket.send_json(event)

            tasks = [asyncio.create_task(forward()), asyncio.create_task(_receive_frames(socket, entry, on_message)),
                     entry.closing]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            refusal = None
            for task in done:
                error = task.exception()
                if client_left(error):
                    continue
                if error is not None:
                    raise error
                refusal = refusal or task.result()
            if refusal is not None:
                await _close(socket, refusal)
    finally:
        telemetry.LIVE_CONNECTIONS.labels(kind).dec()


async def _serve(socket: WebSocket, authenticate, kind: str) -> None:
    """Accept, count against the caps, authenticate (`authenticate(entry)` returns the channels and the
    frame handler, or raises Refused), then stream; every refusal closes the socket with its code."""
    await socket.accept()
    try:
        with services_of(socket).sockets.admitted(client_address(socket)) as entry:
            channels, on_message = await authenticate(entry)
            await _stream(socket, entry, channels, kind, on_message)
    except Refused as refusal:
        await _close(socket, refusal)


@router.websocket("/api/conversations/{session_id}/live")
async def visitor_live(socket: WebSocket, session_id: str) -> None:
    """The visitor's live events: agents' replies, their typing, and status changes."""

    async def authenticate(entry: OpenSocket):
        token = await _auth_token(socket)

        def check():
            with services_of(socket).sessions() as db:
                return ChatService.visitor_conversation(db, session_id, token).token_hash

        try:
            token_hash = await run_in_threadpool(check)
        except (SessionNotFound, SessionForbidden) as exc:
            raise Refused(CloseCode.POLICY_VIOLATION, str(exc), "unauthorized") from None
        services_of(socket).sockets.claim_conversation(entry, session_id, token_hash)

        async def on_message(message: dict):
            await services_of(socket).bus.publish(DESK, {"type": "typing", "conversation_id": session_id,
                                                          "role": "user"})

        return (conversation_channel(session_id),), on_message

    await _serve(socket, authenticate, "visitor")


@router.websocket("/api/agent/live")
async def agent_live(socket: WebSocket) -> None:
    """Every conversation's new messages, notes and status changes, for the agents' consoles."""

    async def authenticate(entry: OpenSocket):
        token = await _auth_token(socket)

        def find_agent():
            with services_of(socket).sessions.begin() as db:
                agent = agents.agent_for_token(db, token) if token else None
                if agent is not None:
                    assignment.mark_seen(db, [agent.id])  # online from now (round-robin assignment)
                return (agent.id, agent.display_name) if agent else (None, None)

        agent_id, name = await run_in_threadpool(find_agent)
        if name is None:
            raise Refused(CloseCode.POLICY_VIOLATION, "invalid or expired agent token; log in again", "unauthorized")
        assert token is not None, "an agent was found by it"
        services_of(socket).sockets.claim_agent(entry, agent_id, token)

        async def on_message(message: dict):
            conversation_id = message.get("conversation_id")
            if isinstance(conversation_id, str) and _CONVERSATION_ID.match(conversation_id):
                event = {"type": "typing", "conversation_id": conversation_id, "role": "agent", "agent": name,
                         "agent_id": agent_id}
                bus = services_of(socket).bus
                await bus.publish(conversation_channel(conversation_id), event)
                await bus.publish(DESK, event)

        return (DESK,), on_message

    await _serve(socket, authenticate, "agent")
