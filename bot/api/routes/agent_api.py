"""Agents: log in, find and read conversations, take over, reply, note, hand back, resolve, relabel, review,
propose intents; admins also approve or reject proposals and approve agents' corrections.

Every route but login needs `Authorization: Bearer <token>`. Changes are made in one transaction and
their live events published once it has committed. Logins and password changes (argon2: deliberately slow)
run two at a time in their own thread pool, so a flood of them never holds up chat turns or /health, and
failed ones are throttled per username and per client address."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.api.deps import (
    LOGIN_WORKERS,
    AgentIdentity,
    CurrentAdmin,
    CurrentAgent,
    InboxFiltersDep,
    LoginGuard,
    ModelDep,
    Services,
    ServicesDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
)
from bot.api.routes.common import client_address, publish
from bot.api.routes.visitor import check_length
from bot.api.schemas import (
    AgentOut,
    ApproveCorrectionRequest,
    ConversationOut,
    ConversationPage,
    CorrectionItem,
    LoginOut,
    LoginRequest,
    MessageOut,
    NewIntentOut,
    NewIntentRequest,
    NoteOut,
    PasswordChange,
    RelabelOut,
    RelabelRequest,
    Responses,
    ReviewedRequest,
    ReviewItem,
    StatsOut,
    TextRequest,
    TranscriptOut,
    error,
)
from bot.desk import agents, desk, stats
from bot.infra.events import Event, EventBus, publish_revocation
from bot.infra.settings import Settings
from bot.infra.store import Agent, Conversation, Message, NewIntent, ProposalStatus, Role
from bot.model.served_model import ServedModel
from bot.model.templates import PlaceholderError, placeholders

router = APIRouter(prefix="/api/agent", tags=["agent"])
UNAUTHORIZED: Responses = {401: error("missing, invalid or expired agent token")}
ADMIN_ONLY: Responses = {**UNAUTHORIZED, 403: error("only an admin may do this")}
THROTTLED: Responses = {429: error("too many failed attempts for this username or from this address; retry after the "
                        "Retry-After header's seconds")}
T = TypeVar("T")
CONVERSATION_ERRORS: Responses = {**UNAUTHORIZED, 404: error("unknown conversation"),
                       409: error("another agent has the conversation, or it is not in a state for this")}


Operation = Callable[[Session, Conversation | None, Agent], tuple[BaseModel | None, list[Event]]]


def change(services: Services, background: BackgroundTasks, me: AgentIdentity, conversation_id: str | None,
           operation: Operation) -> BaseModel:
    """Run `operation(db, conversation, agent)` (returning result, events) in one transaction, then
    publish its events; desk errors become HTTP errors. A result of None: the conversation's inbox row."""
    try:
        with services.sessions.begin() as db:
            agent = db.get_one(Agent, me.id)
            conversation = desk.get_conversation(db, conversation_id, lock=True) if conversation_id else None
            result, events = operation(db, conversation, agent)
            if result is None and conversation is not None:
                result = desk.summary(db, conversation, services.settings.low_confidence)
    except desk.DeskError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    assert result is not None, "an operation without a conversation returns its result"
    background.add_task(publish, services.bus, events)
    return result


def _given(conversation: Conversation | None) -> Conversation:
    """The conversation an operation on one gets from `change`."""
    assert conversation is not None, "change() loads the conversation whenever it is given an id"
    return conversation


def _guard(services: Services) -> LoginGuard:
    if services.login_guard is None:  # made on first use, inside the server's event loop
        settings = services.settings
        throttle = agents.LoginThrottle(settings.login_limit, settings.redis_url, settings.redis_max_connections)
        services.login_guard = LoginGuard(throttle, anyio.Semaphore(LOGIN_WORKERS),
                                          anyio.CapacityLimiter(LOGIN_WORKERS))
    return services.login_guard


async def _not_throttled(guard: LoginGuard, username: str, client: str | None) -> None:
    retry = await guard.throttle.retry_after(username, client)
    if retry is not None:
        raise HTTPException(429, f"too many failed attempts; retry in {retry} s", headers={"Retry-After": str(retry)})


async def password_check(request: Request, services: Services, username: str, work: Callable[[], T | None]
                         ) -> T | None:
    """Run `work()` (a password check returning None when it failed) in the login pool, throttled: checked
    before queueing (a throttled caller costs nothing) and again once its turn came (failures counted while
    it waited count), and a failure counted for the username and the client address."""
    guard, client = _guard(services), client_address(request)
    await _not_throttled(guard, username, client)
    async with guard.slots:
        await _not_throttled(guard, username, client)
        result = await anyio.to_thread.run_sync(work, limiter=guard.threads)
        if result is None:
            await guard.throttle.failed(username, client)
    return result


def _agent_out(agent: Agent | AgentIdentity, settings: Settings | None = None) -> AgentOut:
    return AgentOut(id=agent.id, username=agent.username, display_name=agent.display_name, role=agent.role.value,
                    low_confidence=settings.low_confidence if settings else None)


def _revoked(background: BackgroundTasks, bus: EventBus, agent_id: int, hashes: Sequence[str | None]) -> None:
    """After the commit, tell every replica to close the sockets of these tokens."""
    for token_hash in hashes:
        background.add_task(publish_revocation, bus, agent_id, token_hash)


@router.post("/login", response_model=LoginOut,
             responses={401: error("wrong username or password, or a disabled account"), **THROTTLED})
async def login(body: LoginRequest, request: Request, services: ServicesDep) -> LoginOut:
    """A token for the agent's later requests. After too many failures for the username or from the
    client's address (DISTILBOT_LOGIN_LIMIT) it answers 429 with Retry-After."""
    lifetime = timedelta(hours=services.settings.agent_token_hours)

    def work() -> LoginOut | None:
        with services.sessions.begin() as db:
            found = agents.login(db, body.username, body.password, lifetime)
            if found is None:
                return None
            agent, token = found
            return LoginOut(token=token, expires_in_s=int(lifetime.total_seconds()), agent=_agent_out(agent))

    answer = await password_check(request, services, body.username, work)
    if answer is None:
        raise HTTPException(401, "wrong username or password")
    return answer


@router.post("/logout", status_code=204, responses=UNAUTHORIZED)
def logout(me: CurrentAgent, services: ServicesDep, background: BackgroundTasks) -> None:
    """End this login: the token stops working and the sockets opened with it close."""
    with services.sessions.begin() as db:
        token_hash = agents.logout(db, me.token)
    _revoked(background, services.bus, me.id, [token_hash] if token_hash else [])


@router.post("/password", status_code=204,
             responses={**UNAUTHORIZED, 403: error("the current password is wrong"),
                        422: error("the new password is too short"), **THROTTLED})
async def change_password(body: PasswordChange, me: CurrentAgent, request: Request, services: ServicesDep,
                          background: BackgroundTasks) -> None:
    """Change this agent's password: every other login of the agent ends (this one goes on)."""
    def work() -> list[str] | None:
        with services.sessions.begin() as db:
            return agents.change_password(db, me.id, body.current_password, body.new_password, me.token)

    revoked = await password_check(request, services, me.username, work)
    if revoked is None:
        raise HTTPException(403, "the current password is wrong")
    _revoked(background, services.bus, me.id, revoked)


@router.get("/me", response_model=AgentOut, responses=UNAUTHORIZED)
def whoami(me: CurrentAgent, settings: SettingsDep) -> AgentOut:
    """The agent this token belongs to (and their role), and the server's low-confidence threshold."""
    return _agent_out(me, settings)


@router.get("/intents", response_model=list[str], responses=UNAUTHORIZED)
def intents(me: CurrentAgent, model: ModelDep) -> list[str]:
    """The intents the served model knows (what a message can be relabelled to)."""
    return list(model.classifier.labels)


@router.get("/conversations", response_model=ConversationPage, responses=UNAUTHORIZED)
def conversations(me: CurrentAgent, settings: SettingsDep, db: SessionDep, filters: InboxFiltersDep,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50, offset: Annotated[int, Query(ge=0)] = 0
                  ) -> ConversationPage:
    """The inbox, most recently active first."""
    threshold = settings.low_confidence
    total, rows = desk.find_conversations(db, limit=limit, offset=offset, **filters.criteria(me, threshold))
    return ConversationPage(total=total, counts=desk.counts(db), conversations=desk.summaries(db, rows, threshold))


@router.get("/conversations/{conversation_id}", response_model=TranscriptOut, responses=CONVERSATION_ERRORS)
def transcript(conversation_id: str, me: CurrentAgent, settings: SettingsDep, db: SessionDep) -> TranscriptOut:
    """The whole conversation: each visitor turn's intent, confidence and ranking, each bot turn's template
    and decision, agents' messages, private notes and corrections."""
    try:
        conversation = desk.get_conversation(db, conversation_id)
    except desk.DeskError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return desk.transcript(db, conversation, settings.low_confidence)


@router.post("/conversations/{conversation_id}/take", response_model=ConversationOut,
             responses=CONVERSATION_ERRORS)
def take_over(conversation_id: str, me: CurrentAgent, services: ServicesDep,
          background: BackgroundTasks):
    """This agent takes the conversation: the bot falls silent, the visitor is told who joined."""
    return change(services, background, me, conversation_id,
                  lambda db, c, a: (None, desk.take_over(db, _given(c), a)))


@router.post("/conversations/{conversation_id}/messages", response_model=MessageOut, status_code=201,
             responses=CONVERSATION_ERRORS)
def reply(conversation_id: str, body: TextRequest, me: CurrentAgent, services: ServicesDep,
          background: BackgroundTasks):
    """A message to the visitor, delivered live; replying takes the conversation over if nobody has it."""
    check_length(services.settings, body.text, "text")

    def operation(db, conversation, agent):
        message, events = desk.reply(db, conversation, agent, body.text)
        return desk.public_message(message), events

    return change(services, background, me, conversation_id, operation)


@router.post("/conversations/{conversation_id}/notes", response_model=NoteOut, status_code=201,
             responses=CONVERSATION_ERRORS)
def add_note(conversation_id: str, body: TextRequest, me: CurrentAgent, services: ServicesDep,
          background: BackgroundTasks):
    """A private note for the other agents; the visitor never sees it."""
    check_length(services.settings, body.text, "text")

    def operation(db, conversation, agent):
        note, events = desk.add_note(db, conversation, agent, body.text)
        return desk.note_view(note), events

    return change(services, background, me, conversation_id, operation)


@router.post("/conversations/{conversation_id}/hand-back", response_model=ConversationOut,
             responses=CONVERSATION_ERRORS)
def hand_back(conversation_id: str, me: CurrentAgent, services: ServicesDep,
          background: BackgroundTasks):
    """The bot answers again."""
    return change(services, background, me, conversation_id,
                  lambda db, c, a: (None, desk.hand_back(db, _given(c), a)))


@router.post("/conversations/{conversation_id}/resolve", response_model=ConversationOut,
             responses=CONVERSATION_ERRORS)
def resolve(conversation_id: str, me: CurrentAgent, services: ServicesDep,
          background: BackgroundTasks):
    """Done: the visitor is asked to rate the conversation; a new message from them goes to the bot."""
    return change(services, background, me, conversation_id,
                  lambda db, c, a: (None, desk.resolve(db, _given(c), a)))


@router.put("/conversations/{conversation_id}/reviewed", response_model=ConversationOut,
            responses=CONVERSATION_ERRORS)
def mark_reviewed(conversation_id: str, body: ReviewedRequest, me: CurrentAgent, services: ServicesDep,
                  background: BackgroundTasks):
    """Mark the conversation as reviewed (or not) by an agent."""
    def operation(db, conversation, agent):
        conversation.reviewed = body.reviewed
        return None, []

    return change(services, background, me, conversation_id, operation)


@router.put("/messages/{message_id}/intent", response_model=RelabelOut,
            responses={**UNAUTHORIZED, 404: error("unknown message"), 409: error("not a visitor's message"),
                       422: error("unknown intent")})
def relabel(message_id: int, body: RelabelRequest, me: CurrentAgent, services: ServicesDep,
          background: BackgroundTasks):
    """The intent a visitor's message really had: kept as a correction that redistillation learns from."""
    known = services.holder.model.classifier.labels

    def operation(db, _conversation, agent):
        correction = desk.relabel(db, message_id, body.intent, agent, known)
        return RelabelOut(message_id=message_id, text=correction.text, intent=correction.intent,
                          predicted_intent=correction.predicted_intent,
                          confirmed=correction.intent == correction.predicted_intent), []

    return change(services, background, me, None, operation)


@router.get("/corrections", response_model=list[CorrectionItem], responses=UNAUTHORIZED)
def corrections(me: CurrentAgent, db: SessionDep,
                waiting: Annotated[bool | None, Query(description="Only corrections no admin approved yet (true) "
                                                                  "or only approved ones (false).")] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                offset: Annotated[int, Query(ge=0)] = 0) -> list[CorrectionItem]:
    """Agents' corrections and confirmations, oldest first. One that contradicts the base training data is only
    learned once an admin approved it (an admin's own is approved at once)."""
    return desk.find_corrections(db, waiting, limit, offset)


@router.post("/corrections/{message_id}/approve", response_model=CorrectionItem,
             responses={**ADMIN_ONLY, 404: error("no correction of that message"),
                        409: error("an agent relabelled the message since")})
def approve_correction(message_id: int, body: ApproveCorrectionRequest, me: CurrentAdmin, services: ServicesDep,
                       background: BackgroundTasks):
    """Admins only: redistillation may let this correction (to `intent`, the one the admin saw) overturn the
    base training data. Relabelling the message to another intent later (by an agent) takes the approval back."""
    def operation(db, _conversation, agent):
        correction = desk.approve_correction(db, message_id, agent, body.intent)
        conversation_id = db.get_one(Message, message_id).conversation_id
        return desk.correction_view(correction, conversation_id, desk.agent_names(db)), []

    return change(services, background, me, None, operation)


@router.get("/review", response_model=list[ReviewItem], responses=UNAUTHORIZED)
def review_queue(me: CurrentAgent, settings: SettingsDep, db: SessionDep,
                 limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[ReviewItem]:
    """Visitors' messages understood with low confidence or answered with a thumbs-down, newest first, until
    an agent confirms or corrects their intent."""
    return desk.review_queue(db, settings.low_confidence, limit)


@router.get("/stats", response_model=StatsOut, responses=UNAUTHORIZED)
def dashboard(me: CurrentAgent, model: ModelDep, db: SessionDep,
              days: Annotated[int, Query(ge=1, le=366)] = 14) -> StatsOut:
    """The dashboard's figures: per day (oldest first) conversations, handoff and fallback rates, average
    confidence and CSAT; and the served model's version and teacher-vs-student figures (its metrics.json)."""
    return StatsOut(days=stats.daily(db, days),
                    model=stats.model_summary(model.version, model.classifier.backend, model.metrics))


def _new_intent_view(row: NewIntent, names: dict[int, str]) -> NewIntentOut:
    return NewIntentOut(name=row.name, answer=row.answer, buttons=row.buttons, examples=row.examples,
                        agent_id=row.agent_id, agent=names.get(row.agent_id) if row.agent_id is not None else None,
                        created_at=row.created_at.isoformat(),
                        status=row.status.value, decided_by=row.decided_by,
                        decider=names.get(row.decided_by) if row.decided_by is not None else None,
                        decided_at=row.decided_at.isoformat() if row.decided_at else None)


def _check_answer(model: ServedModel, answer: str) -> None:
    """422 unless every placeholder of `answer` is a plain `{name}` of a slot the templates define."""
    slots = model.retriever.book.slots
    try:
        unknown = placeholders(answer) - set(slots)
    except PlaceholderError as exc:
        raise HTTPException(422, f"answer: {exc}") from None
    if unknown:
        raise HTTPException(422, f"answer: unknown placeholders {sorted(unknown)}; known: {sorted(slots)}")


def _decide(row: NewIntent, status: ProposalStatus, me: AgentIdentity) -> None:
    row.status, row.decided_by, row.decided_at = status, me.id, datetime.now(UTC)


@router.post("/intents", response_model=NewIntentOut, status_code=201,
             responses={**UNAUTHORIZED, 409: error("the intent exists already"),
                        422: error("invalid name, answer, examples or buttons")})
def add_intent(body: NewIntentRequest, me: CurrentAgent, model: ModelDep, sessions: SessionsDep) -> NewIntentOut:
    """Propose a new intent with its answer and example messages. An admin approves it (an admin's own is
    approved at once); the next redistillation then learns it and its answer becomes a template. A
    rejected name may be proposed again."""
    _check_answer(model, body.answer)
    labels = set(model.classifier.labels)
    for button in body.buttons:
        target = button.payload.removeprefix("/")
        if button.payload.startswith("/") and target not in labels and target != body.name:
            raise HTTPException(422, f"buttons: payload {button.payload!r} names an unknown intent")
    with sessions.begin() as db:
        row = db.get(NewIntent, body.name)
        if body.name in labels or (row is not None and row.status is not ProposalStatus.REJECTED):
            raise HTTPException(409, f"intent {body.name!r} exists already")
        if row is None:
            row = NewIntent(name=body.name)
            db.add(row)
        row.answer, row.buttons, row.examples = body.answer, [b.model_dump() for b in body.buttons], body.examples
        row.agent_id, row.created_at = me.id, datetime.now(UTC)
        row.status, row.decided_by, row.decided_at = ProposalStatus.PROPOSED, None, None
        if me.role is Role.ADMIN:
            _decide(row, ProposalStatus.APPROVED, me)
        db.flush()
        return _new_intent_view(row, desk.agent_names(db))


@router.get("/intents/new", response_model=list[NewIntentOut], responses=UNAUTHORIZED)
def new_intents(me: CurrentAgent, db: SessionDep,
                status: Annotated[ProposalStatus | None, Query(description="Only proposals in this state.")] = None
                ) -> list[NewIntentOut]:
    """Intents proposed through the API, oldest first; only approved ones are learned by redistillation."""
    query = select(NewIntent).order_by(NewIntent.created_at)
    if status is not None:
        query = query.where(NewIntent.status == status)
    names = desk.agent_names(db)
    return [_new_intent_view(r, names) for r in db.scalars(query)]


def _decision(name: str, status: ProposalStatus, me: AgentIdentity, services: Services) -> NewIntentOut:
    with services.sessions.begin() as db:
        row = db.get(NewIntent, name)
        if row is None:
            raise HTTPException(404, f"no proposed intent {name!r}")
        if status is ProposalStatus.APPROVED:  # proposed before placeholders were checked, or slots changed
            _check_answer(services.holder.model, row.answer)
        _decide(row, status, me)
        db.flush()
        return _new_intent_view(row, desk.agent_names(db))


DECISION_ERRORS: Responses = {**ADMIN_ONLY, 404: error("no such proposed intent"),
                   422: error("its answer has placeholders the templates do not define")}


@router.post("/intents/{name}/approve", response_model=NewIntentOut, responses=DECISION_ERRORS)
def approve_intent(name: str, me: CurrentAdmin, services: ServicesDep) -> NewIntentOut:
    """Admins only: the next redistillation learns this intent and serves its answer."""
    return _decision(name, ProposalStatus.APPROVED, me, services)


@router.post("/intents/{name}/reject", response_model=NewIntentOut, responses=DECISION_ERRORS)
def reject_intent(name: str, me: CurrentAdmin, services: ServicesDep) -> NewIntentOut:
    """Admins only: the intent is not learned (an approved one is withdrawn before the next redistillation)."""
    return _decision(name, ProposalStatus.REJECTED, me, services)
