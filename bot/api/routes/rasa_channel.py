"""Rasa's REST channel, so existing Rasa web chat clients work against us unchanged."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from bot.api.deps import ServicesDep
from bot.api.routes.common import client_address, count_turn, publish, visitor_errors
from bot.api.routes.visitor import check_length
from bot.api.schemas import ButtonOut, RasaMessage, RasaReply

router = APIRouter(tags=["rasa"])


@router.get("/webhooks/rest/")
def rest_channel_health() -> dict:
    """Rasa clients probe this to see the channel is up."""
    return {"status": "ok"}


@router.post("/webhooks/rest/webhook", response_model=list[RasaReply], response_model_exclude_none=True)
async def rest_webhook(body: RasaMessage, request: Request, services: ServicesDep) -> list[RasaReply]:
    """`{"sender", "message"}` in, the bot's replies out as `[{"recipient_id", "text", "buttons"?}]`. As in
    Rasa, the sender id alone names the conversation: a client must keep it unguessable."""
    check_length(services.settings, body.message)
    with visitor_errors():
        understood = await services.chat.understand(body.message)
        turn = await run_in_threadpool(services.chat.handle, body.message, sender=body.sender,
                                       client=client_address(request), understood=understood)
    count_turn(turn)
    await publish(services.bus, turn.events)
    return [RasaReply(recipient_id=body.sender, text=r.text,
                      buttons=[ButtonOut(**b.model_dump()) for b in r.buttons] or None) for r in turn.replies]
