"""Answers in the console: list them, read one's revisions with their diffs, create, edit, retire, restore;
admins approve or reject agents' proposed changes. An admin's change is served at once on this replica and
within `DISTILBOT_ANSWERS_INTERVAL_S` on the others, without redistillation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.api import answer_sync
from bot.api.deps import AgentIdentity, CurrentAdmin, CurrentAgent, Services, ServicesDep
from bot.api.schemas import AnswerBase, AnswerWrite, Responses, error
from bot.desk import answers
from bot.desk.answers import AnswerHistory, AnswerOut, Rules
from bot.desk.desk import DeskError
from bot.infra.store import AnswerRevision, ProposalStatus, Role
from bot.model.templates import TemplateBook

router = APIRouter(prefix="/api/agent/answers", tags=["answers"])
AnswerId = Annotated[str, Path(max_length=128)]
RevisionId = Annotated[int, Path(ge=0, le=2**31 - 1, description="A revision's id (0: the model's own version).")]
UNAUTHORIZED: Responses = {401: error("missing, invalid or expired agent token")}
WRITE_ERRORS: Responses = {**UNAUTHORIZED, 404: error("no such answer or revision"),
                           409: error("the answer changed since the given revision (reload it), or the id is taken"),
                           422: error("an intent the served model does not know, an unknown {slot}, action or button")}


def _rules(services: Services) -> Rules:
    model = services.holder.model
    return Rules(frozenset(model.classifier.labels), frozenset(services.holder.own_book.slots))


Work = Callable[[Session, TemplateBook, Rules], AnswerRevision]


async def _change(services: Services, work: Work) -> AnswerHistory:
    """Run `work` in one transaction; once an approved change committed, serve it here at once."""
    own, rules = services.holder.own_book, _rules(services)

    def run() -> tuple[str, bool]:
        with services.sessions.begin() as db:
            row = work(db, own, rules)
            return row.answer_id, row.status is ProposalStatus.APPROVED

    try:
        answer_id, approved = await run_in_threadpool(run)
    except DeskError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if approved:
        await answer_sync.refresh(services)
    return await run_in_threadpool(_history, services, answer_id)


def _history(services: Services, answer_id: str) -> AnswerHistory:
    with services.sessions() as db:
        try:
            return answers.history(db, services.holder.own_book, answer_id)
        except DeskError as exc:
            raise HTTPException(exc.status, str(exc)) from None


def _approves(me: AgentIdentity) -> bool:
    return me.role is Role.ADMIN


@router.get("", response_model=list[AnswerOut], responses=UNAUTHORIZED)
def list_answers(me: CurrentAgent, services: ServicesDep) -> list[AnswerOut]:
    """Every answer as served (retired ones too): the model's own templates, then those added here."""
    with services.sessions() as db:
        return answers.answers(db, services.holder.own_book)


@router.get("/{answer_id}", response_model=AnswerHistory, responses={**UNAUTHORIZED, 404: error("no such answer")})
def answer_history(answer_id: AnswerId, me: CurrentAgent, services: ServicesDep) -> AnswerHistory:
    """One answer, the model's own version of it, and every revision (newest first) with its diff."""
    return _history(services, answer_id)


@router.post("", response_model=AnswerHistory, status_code=201, responses=WRITE_ERRORS)
async def create_answer(body: AnswerWrite, me: CurrentAgent, services: ServicesDep) -> AnswerHistory:
    """A new answer for an intent the model knows (an agent's is a proposal an admin approves)."""
    return await _change(services, lambda db, own, rules: answers.create(
        db, own, rules, body.answer.template(), me.id, _approves(me)))


@router.put("/{answer_id}", response_model=AnswerHistory, responses=WRITE_ERRORS)
async def edit_answer(answer_id: AnswerId, body: AnswerWrite, me: CurrentAgent, services: ServicesDep
                      ) -> AnswerHistory:
    """A new revision of the answer, written over `base` (an agent's is a proposal an admin approves)."""
    if body.answer.id != answer_id:
        raise HTTPException(422, f"answer.id: {body.answer.id!r} is not {answer_id!r}; an answer's id is fixed")
    return await _change(services, lambda db, own, rules: answers.edit(
        db, own, rules, body.answer.template(), body.base, me.id, _approves(me)))


@router.post("/{answer_id}/retire", response_model=AnswerHistory, responses=WRITE_ERRORS)
async def retire_answer(answer_id: AnswerId, body: AnswerBase, me: CurrentAgent, services: ServicesDep
                        ) -> AnswerHistory:
    """The bot stops using the answer; restoring an earlier revision brings it back."""
    return await _change(services, lambda db, own, _rules: answers.retire(
        db, own, answer_id, body.base, me.id, _approves(me)))


@router.post("/{answer_id}/revisions/{revision}/restore", response_model=AnswerHistory, responses=WRITE_ERRORS)
async def restore_revision(answer_id: AnswerId, revision: RevisionId, body: AnswerBase, me: CurrentAgent,
                           services: ServicesDep) -> AnswerHistory:
    """A new revision with that revision's content (0: the model's own template)."""
    return await _change(services, lambda db, own, rules: answers.restore(
        db, own, rules, answer_id, revision, body.base, me.id, _approves(me)))


@router.post("/revisions/{revision}/approve", response_model=AnswerHistory,
             responses={**WRITE_ERRORS, 403: error("only an admin may do this")})
async def approve_revision(revision: RevisionId, me: CurrentAdmin, services: ServicesDep) -> AnswerHistory:
    """Admins only: serve an agent's proposed change (409 if the answer changed since it was proposed)."""
    return await _change(services, lambda db, own, rules: answers.decide(db, own, rules, revision, True, me.id))


@router.post("/revisions/{revision}/reject", response_model=AnswerHistory,
             responses={**WRITE_ERRORS, 403: error("only an admin may do this")})
async def reject_revision(revision: RevisionId, me: CurrentAdmin, services: ServicesDep) -> AnswerHistory:
    """Admins only: the proposed change is not served."""
    return await _change(services, lambda db, own, rules: answers.decide(db, own, rules, revision, False, me.id))

