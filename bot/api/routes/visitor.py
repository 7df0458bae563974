"""Visitors: chat, their conversation's history, feedback on the bot's answers, satisfaction rating."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from bot.api.deps import BusDep, ChatDep, ServicesDep, bearer
from bot.api.routes.common import client_address, count_turn, publish, visitor_errors
from bot.api.schemas import (
    ButtonOut,
    ChatRequest,
    ChatResponse,
    CsatRequest,
    FeedbackRequest,
    HistoryOut,
    IntentOut,
    ReplyOut,
    Responses,
    error,
)
from bot.conversation.dialogue import Identity
from bot.desk.desk import public_message, visible_agent
from bot.infra.events import DESK
from bot.infra.settings import Settings

router = APIRouter(tags=["visitor"])
SESSION_ERRORS: Responses = {403: error("wrong or missing session token, or an identity that does not verify"),
                  404: error("unknown conversation or message")}
Authorization = Annotated[str | None, Header(description="Bearer <session_token>")]


def check_length(settings: Settings, text: str, field: str = "message") -> None:
    limit = settings.max_message_chars
    if len(text) > limit:
        raise HTTPException(422, f"{field}: is {len(text)} characters; the limit is {limit}")


@router.post("/api/chat", response_model=ChatResponse, responses=SESSION_ERRORS)
async def chat(body: ChatRequest, request: Request, services: ServicesDep,
               authorization: Authorization = None) -> ChatResponse:
    """Send the visitor's message; get the bot's replies and what it understood. While a person has the
    conversation the bot stays silent (decision `silent`) and the agent's replies arrive on the socket."""
    check_length(services.settings, body.message)
    with visitor_errors():
        identity = (Identity(body.identity.user_id, body.identity.user_hash, body.identity.email)
                    if body.identity is not None else None)
        understood = await services.chat.understand(body.message)
        turn = await run_in_threadpool(services.chat.handle, body.message, body.session_id,
                                       bearer(authorization), identity=identity, client=client_address(request),
                                       understood=understood)
    count_turn(turn)
    await publish(services.bus, turn.events)
    top = turn.prediction.top
    return ChatResponse(
        session_id=turn.session_id,
        session_token=turn.session_token,
        message_id=turn.message_id,
        replies=[ReplyOut(id=i, text=r.text, buttons=[ButtonOut(**b.model_dump()) for b in r.buttons])
                 for i, r in zip(turn.reply_ids, turn.replies)],
        intent=IntentOut(name=top.name, confidence=top.confidence),
        ranking=[IntentOut(name=s.name, confidence=s.confidence) for s in turn.prediction.ranking],
        template=turn.template,
        decision=turn.decision.value,
        status=turn.status,
        model_version=turn.model_version,
    )


@router.get("/api/conversations/{session_id}", response_model=HistoryOut, responses=SESSION_ERRORS)
def history(session_id: str, chat: ChatDep, authorization: Authorization = None) -> HistoryOut:
    """The visitor's conversation so far (to restore the widget after a reload). Agents' private notes are
    never part of it."""
    with visitor_errors():
        conversation, messages = chat.history(session_id, bearer(authorization))
    return HistoryOut(session_id=conversation.id, status=conversation.status,
                      agent=agent.display_name if (agent := visible_agent(conversation)) else None,
                      csat=conversation.csat, messages=[public_message(m) for m in messages])


@router.put("/api/conversations/{session_id}/messages/{message_id}/feedback", status_code=204,
            responses={**SESSION_ERRORS, 409: error("not a bot message")})
def feedback(session_id: str, message_id: int, body: FeedbackRequest, chat: ChatDep, bus: BusDep,
             background: BackgroundTasks, authorization: Authorization = None) -> None:
    """Thumbs up or down on one of the bot's answers (the agents' consoles are told at once)."""
    with visitor_errors():
        chat.feedback(session_id, bearer(authorization), message_id, body.value)
    background.add_task(bus.publish, DESK, {"type": "feedback", "conversation_id": session_id,
                                            "message_id": message_id, "value": body.value})


@router.put("/api/conversations/{session_id}/csat", status_code=204,
            responses={**SESSION_ERRORS, 409: error("the conversation is not resolved")})
def rate(session_id: str, body: CsatRequest, chat: ChatDep, authorization: Authorization = None) -> None:
    """How satisfied the visitor was (1–5), once an agent resolved the conversation."""
    with visitor_errors():
        chat.rate(session_id, bearer(authorization), body.score)
