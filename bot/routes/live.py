"""WebSockets for live events: a visitor's conversation (agent replies, typing, status) and the agents'
desk (every conversation's messages and status changes).

A socket first sends `{"type": "auth", "token": "…"}` (a token in the URL would end up in access logs);
the server answers `{"type": "ready"}` once it listens, then streams events as JSON. Clients may send
`{"type": "typing"}` (agents add "conversation_id") and `{"type": "ping"}`."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from bot import agents, telemetry
from bot.dialogue import ChatService, SessionForbidden, SessionNotFound
from bot.events import DESK, conversation_channel

router = APIRouter()
AUTH_TIMEOUT_S = 10
POLICY_VIOLATION = 1008


async def _auth_token(socket: WebSocket) -> str | None:
    try:
        first = await asyncio.wait_for(socket.receive_json(), AUTH_TIMEOUT_S)
    except (TimeoutError, ValueError, KeyError, WebSocketDisconnect):
        return None
    token = first.get("token") if isinstance(first, dict) and first.get("type") == "auth" else None
    return token if isinstance(token, str) else None


async def _refuse(socket: WebSocket, reason: str) -> None:
    with contextlib.suppress(Exception):
        await socket.send_json({"type": "error", "detail": reason})
        await socket.close(POLICY_VIOLATION, reason)


async def _stream(socket: WebSocket, channels: tuple[str, ...], kind: str, on_message) -> None:
    """Forward bus events to the socket and the socket's messages to `on_message`, until either side ends."""
    bus = socket.app.state.bus
    telemetry.LIVE_CONNECTIONS.labels(kind).inc()
    try:
        async with bus.subscribe(*channels) as events:
            await socket.send_json({"type": "ready"})

            async def forward():
                async for event in events:
                    await socket.send_json(event)

            async def receive():
                while True:
                    message = await socket.receive_json()
                    if isinstance(message, dict) and message.get("type") == "ping":
                        await socket.send_json({"type": "pong"})
                    elif isinstance(message, dict):
                        await on_message(message)

            tasks = [asyncio.create_task(forward()), asyncio.create_task(receive())]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in done:
                if not isinstance(task.exception(), WebSocketDisconnect | ValueError | RuntimeError | type(None)):
                    raise task.exception()
    finally:
        telemetry.LIVE_CONNECTIONS.labels(kind).dec()


@router.websocket("/api/conversations/{session_id}/live")
async def visitor_live(socket: WebSocket, session_id: str) -> None:
    """The visitor's live events: agents' replies, their typing, and status changes."""
    await socket.accept()
    token = await _auth_token(socket)

    def check():
        with socket.app.state.sessions() as db:
            ChatService.visitor_conversation(db, session_id, token)

    try:
        await run_in_threadpool(check)
    except (SessionNotFound, SessionForbidden) as exc:
        return await _refuse(socket, str(exc))

    async def on_message(message: dict):
        if message.get("type") == "typing":
            await socket.app.state.bus.publish(DESK, {"type": "typing", "conversation_id": session_id,
                                                      "role": "user"})

    await _stream(socket, (conversation_channel(session_id),), "visitor", on_message)


@router.websocket("/api/agent/live")
async def agent_live(socket: WebSocket) -> None:
    """Every conversation's new messages, notes and status changes, for the agents' consoles."""
    await socket.accept()
    token = await _auth_token(socket)

    def find_agent():
        with socket.app.state.sessions.begin() as db:
            agent = agents.agent_for_token(db, token) if token else None
            return (agent.id, agent.display_name) if agent else (None, None)

    agent_id, name = await run_in_threadpool(find_agent)
    if name is None:
        return await _refuse(socket, "invalid or expired agent token; log in again")

    async def on_message(message: dict):
        conversation_id = message.get("conversation_id")
        if message.get("type") == "typing" and isinstance(conversation_id, str):
            event = {"type": "typing", "conversation_id": conversation_id, "role": "agent", "agent": name,
                     "agent_id": agent_id}
            await socket.app.state.bus.publish(conversation_channel(conversation_id), event)
            await socket.app.state.bus.publish(DESK, event)

    await _stream(socket, (DESK,), "agent", on_message)
