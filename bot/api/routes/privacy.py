"""Customer data a team must be able to hand over or erase: an admin exports the conversations the inbox's
filters match (JSON Lines or CSV), or erases one visitor's conversations on request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from bot.api.deps import CurrentAdmin, InboxFiltersDep, ServicesDep
from bot.api.routes.common import in_transaction
from bot.api.schemas import ErasureRequest, Responses, error
from bot.desk.erasure import ErasureOut, erase
from bot.desk.export import ExportFormat, lines, transcripts

router = APIRouter(prefix="/api/agent", tags=["customer data"])
MEDIA = {ExportFormat.JSONL: "application/x-ndjson", ExportFormat.CSV: "text/csv; charset=utf-8"}
ADMIN_ONLY: Responses = {401: error("missing, invalid or expired agent token"), 403: error("only an admin may do this")}


@router.get("/exports/conversations", response_class=StreamingResponse, responses={
    **ADMIN_ONLY, 200: {"description": "One conversation a line (JSONL: the transcript as the console shows it) or "
                                       "one message or note a row (CSV).",
                        "content": {"application/x-ndjson": {"schema": {"type": "string"}},
                                    "text/csv": {"schema": {"type": "string"}}}}})
def export_conversations(me: CurrentAdmin, services: ServicesDep, filters: InboxFiltersDep,
                         format: Annotated[ExportFormat, Query(description="jsonl or csv.")] = ExportFormat.JSONL
                         ) -> StreamingResponse:
    """Admins only: every conversation the filters match (the inbox's), most recently active first, with its
    messages, what the model understood, corrections and agents' notes."""
    found = transcripts(services.sessions, filters.criteria(me, services.settings.low_confidence),
                        services.settings.low_confidence)
    name = f"conversations-{datetime.now(UTC):%Y%m%d-%H%M%S}.{format.value}"
    return StreamingResponse(lines(found, format), media_type=MEDIA[format],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/erasures", response_model=ErasureOut, status_code=201, responses={
    **ADMIN_ONLY, 404: error("no conversation matches"), 422: error("not exactly one of the three is named")})
def erase_visitor(body: ErasureRequest, me: CurrentAdmin, services: ServicesDep) -> ErasureOut:
    """Admins only, on a visitor's request: erase one conversation, or every conversation of a verified customer
    (by the shop's customer id or e-mail address), with their messages, notes, corrections and feedback. The
    texts' digests are kept for the redistillation job, which removes the texts from its harvested data and
    the teacher-output cache (`distill erase`, or its next run); no text or identifier is kept."""
    return in_transaction(services.sessions,
                          lambda db: erase(db, me.id, body.conversation_id, body.customer_id, body.email))
