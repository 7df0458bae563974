"""Canned replies: each agent's own and the shared ones (admins keep those), and the list filled in for one
conversation, which the console's reply box offers after `/`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from bot.api.deps import CurrentAgent, ServicesDep
from bot.api.routes.common import in_transaction
from bot.api.schemas import CannedRequest, Responses, error
from bot.desk import canned, desk
from bot.desk.canned import CannedOut
from bot.infra.store import Agent

router = APIRouter(prefix="/api/agent", tags=["canned replies"])
ReplyId = Annotated[int, Path(ge=1, le=2**31 - 1)]
UNAUTHORIZED: Responses = {401: error("missing, invalid or expired agent token")}
WRITE_ERRORS: Responses = {**UNAUTHORIZED, 403: error("a shared reply, and you are not an admin"),
                           404: error("no such canned reply of yours or shared"),
                           409: error("the shortcut is taken"), 422: error("a placeholder other than {name}")}


def _in_transaction(services, me, work):
    """`work(db, agent)` in one transaction, for the agent behind the request."""
    return in_transaction(services.sessions, lambda db: work(db, db.get_one(Agent, me.id)))


@router.get("/canned", response_model=list[CannedOut], responses=UNAUTHORIZED)
def list_canned(me: CurrentAgent, services: ServicesDep) -> list[CannedOut]:
    """The shared canned replies and yours (yours win a shortcut both have), by shortcut."""
    return _in_transaction(services, me, lambda db, agent: canned.listed(db, agent, None, {}))


@router.get("/conversations/{conversation_id}/canned", response_model=list[CannedOut],
            responses={**UNAUTHORIZED, 404: error("unknown conversation")})
def canned_for(conversation_id: str, me: CurrentAgent, services: ServicesDep) -> list[CannedOut]:
    """The canned replies with `filled`: their {slots} filled from this conversation (its slots, the answers'
    defaults, {agent} your name); a placeholder with no value stays as written, for you to fill in."""
    defaults = services.holder.own_book.slots
    return _in_transaction(services, me, lambda db, agent: canned.listed(
        db, agent, desk.get_conversation(db, conversation_id), defaults))


@router.post("/canned", response_model=CannedOut, status_code=201, responses=WRITE_ERRORS)
def create_canned(body: CannedRequest, me: CurrentAgent, services: ServicesDep) -> CannedOut:
    """A canned reply of your own, or (admins) a shared one."""
    return _in_transaction(services, me, lambda db, agent: canned.create(db, agent, body.shortcut, body.text,
                                                                         body.shared))


@router.put("/canned/{reply_id}", response_model=CannedOut, responses=WRITE_ERRORS)
def edit_canned(reply_id: ReplyId, body: CannedRequest, me: CurrentAgent, services: ServicesDep) -> CannedOut:
    """Change the shortcut and text of one of yours, or (admins) of a shared one."""
    return _in_transaction(services, me, lambda db, agent: canned.edit(db, agent, reply_id, body.shortcut, body.text))


@router.delete("/canned/{reply_id}", status_code=204, response_class=Response, responses=WRITE_ERRORS)
def delete_canned(reply_id: ReplyId, me: CurrentAgent, services: ServicesDep) -> Response:
    """Delete one of yours, or (admins) a shared one."""
    _in_transaction(services, me, lambda db, agent: canned.delete(db, agent, reply_id))
    return Response(status_code=204)
