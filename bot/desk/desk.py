"""What agents do with conversations: find them, read them, take over, reply, note, hand back, resolve,
relabel, review. Each operation works inside the caller's transaction and returns the live events it
causes, which the API publishes once the transaction has committed."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, Select, and_, case, exists, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from bot.desk.views import (
    ConversationOut,
    CorrectionItem,
    CorrectionOut,
    MessageOut,
    NoteOut,
    ReviewItem,
    TranscriptMessage,
    TranscriptOut,
)
from bot.infra.events import DESK, Event, conversation_channel
from bot.infra.office_hours import OFFLINE_SLOT
from bot.infra.store import (
    Agent,
    Conversation,
    ConversationStatus,
    Correction,
    Message,
    Note,
    Role,
    locked_conversation,
    utcnow,
)

_user, _later_user = aliased(Message), aliased(Message)


class DeskError(Exception):
    """An operation that cannot be done now; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def flush_unique(db: Session, conflict: str) -> None:
    """Flush inside a savepoint; a unique index broken by a concurrent write (two people saving at once) is a
    409 with `conflict` as its message, and the rest of the transaction stays usable."""
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:
        raise DeskError(409, conflict) from None


def public_message(message: Message) -> MessageOut:
    """What the visitor may see of a message."""
    return MessageOut(id=message.id, role=message.role, text=message.text, buttons=message.buttons or [],
                      agent=message.agent.display_name if message.agent else None, feedback=message.feedback,
                      created_at=message.created_at.isoformat())


def agent_message(message: Message, correction: Correction | None = None,
                  low_confidence: float = 0.5) -> TranscriptMessage:
    """What an agent sees: also what the model understood and what the policy decided."""
    low = message.role == "user" and message.confidence is not None and message.confidence < low_confidence
    return TranscriptMessage(
        **public_message(message).model_dump(), intent=message.intent, confidence=message.confidence,
        low_confidence=low, ranking=message.ranking or [], template=message.template, decision=message.decision,
        model_version=message.model_version,
        correction=CorrectionOut(intent=correction.intent, agent_id=correction.agent_id,
                                 created_at=correction.created_at.isoformat()) if correction else None)


def message_events(conversation_id: str, messages: list[Message]) -> list[Event]:
    """New messages go to the visitor (public view) and to the agents (full view)."""
    events = []
    for message in messages:
        events.append(Event((conversation_channel(conversation_id),),
                            {"type": "message", "conversation_id": conversation_id,
                             "message": public_message(message).model_dump(mode="json")}))
        events.append(Event((DESK,), {"type": "message", "conversation_id": conversation_id,
                                      "message": agent_message(message).model_dump(mode="json")}))
    return events


def visible_agent(conversation: Conversation) -> Agent | None:
    """The agent a visitor may be shown: the one talking with them, never one a waiting conversation was only
    offered to (round-robin assignment), which would tell strangers who is online."""
    return conversation.agent if conversation.status == ConversationStatus.WITH_AGENT else None


def status_event(conversation: Conversation) -> list[Event]:
    """Who has the conversation now: the visitor's widget and every console show it (the visitor without an
    agent who was only offered it)."""
    payload = {"type": "status", "conversation_id": conversation.id,
               "status": ConversationStatus(conversation.status).value,
               "agent": conversation.agent.display_name if conversation.agent else None,
               "agent_id": conversation.agent_id}
    if conversation.agent_id is not None and visible_agent(conversation) is None:
        return [Event((conversation_channel(conversation.id),), {**payload, "agent": None, "agent_id": None}),
                Event((DESK,), payload)]
    return [Event((conversation_channel(conversation.id), DESK), payload)]


def _inbox_figures(conversation_ids: list[str]) -> Select:
    """Per conversation, in one grouped query: visitor messages, their lowest confidence, whether any message
    got a thumbs-down, and the last message (joined on its id)."""
    is_user = Message.role == "user"
    figures = (select(Message.conversation_id,
                      func.count(case((is_user, 1))).label("users"),
                      func.min(case((is_user, Message.confidence))).label("lowest"),
                      func.max(case((Message.feedback == "down", 1), else_=0)).label("down"),
                      func.max(Message.id).label("last_id"))
               .where(Message.conversation_id.in_(conversation_ids)).group_by(Message.conversation_id)
               .subquery())
    return (select(figures.c.conversation_id, figures.c.users, figures.c.lowest, figures.c.down, Message)
            .join(Message, Message.id == figures.c.last_id))


def summaries(db: Session, conversations: list[Conversation], low_confidence: float) -> list[ConversationOut]:
    """Inbox rows for a page of conversations: one query for all of them, not a few per row."""
    found = {row.conversation_id: row for row in db.execute(_inbox_figures([c.id for c in conversations]))}
    shown = []
    for conversation in conversations:
        row = found.get(conversation.id)
        lowest = row.lowest if row else None
        shown.append(ConversationOut(
            id=conversation.id, status=conversation.status,
            agent=conversation.agent.display_name if conversation.agent else None,
            agent_id=conversation.agent_id, csat=conversation.csat, reviewed=conversation.reviewed,
            created_at=conversation.created_at.isoformat(), updated_at=conversation.updated_at.isoformat(),
            messages=row.users if row else 0, last_message=public_message(row.Message) if row else None,
            lowest_confidence=lowest, low_confidence=lowest is not None and lowest < low_confidence,
            thumbs_down=bool(row and row.down),
            customer_id=conversation.customer_id, customer_email=conversation.customer_email,
            language=conversation.language, offline_message=bool((conversation.slots or {}).get(OFFLINE_SLOT))))
    return shown


def summary(db: Session, conversation: Conversation, low_confidence: float) -> ConversationOut:
    """One row of the inbox."""
    return summaries(db, [conversation], low_confidence)[0]


def find_conversations(db: Session, *, status: ConversationStatus | None = None, low_confidence: bool | None = None,
                       threshold: float = 0.5, intent: str | None = None, thumbs_down: bool | None = None,
                       since: datetime | None = None, until: datetime | None = None, text: str | None = None,
                       reviewed: bool | None = None, agent_id: int | None = None, limit: int = 50,
                       offset: int = 0) -> tuple[int, list[Conversation]]:
    """Conversations matching every filter given, most recently active first, and how many match (all filters
    are in SQL, so `total` and the pages agree). `low_confidence`: with (True) or without (False) a visitor
    message understood with less confidence than `threshold`."""
    conditions = []
    has = lambda *where: exists().where(Message.conversation_id == Conversation.id, *where)  # noqa: E731
    if status is not None:
        conditions.append(Conversation.status == status)
    if low_confidence is not None:
        found = has(Message.role == "user", Message.confidence < threshold)
        conditions.append(found if low_confidence else ~found)
    if intent is not None:
        conditions.append(has(Message.role == "user", Message.intent == intent))
    if thumbs_down is not None:
        found = has(Message.feedback == "down")
        conditions.append(found if thumbs_down else ~found)
    if since is not None:
        conditions.append(Conversation.created_at >= since)
    if until is not None:
        conditions.append(Conversation.created_at < until)
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(has(Message.text.ilike(f"%{escaped}%", escape="\\")))
    if reviewed is not None:
        conditions.append(Conversation.reviewed == reviewed)
    if agent_id is not None:
        conditions.append(Conversation.agent_id == agent_id)
    where = and_(*conditions) if conditions else true()  # what SQLAlchemy makes of a plain True
    total = db.scalar(select(func.count()).select_from(Conversation).where(where)) or 0
    rows = db.scalars(select(Conversation).where(where)
                      .order_by(Conversation.updated_at.desc(), Conversation.id).limit(limit).offset(offset))
    return total, list(rows)


def counts(db: Session) -> dict[ConversationStatus, int]:
    """Conversations per status, for the inbox's badges."""
    found = dict(db.execute(select(Conversation.status, func.count()).group_by(Conversation.status)).all())
    return {status: found.get(status, 0) for status in ConversationStatus}


def get_conversation(db: Session, conversation_id: str, lock: bool = False) -> Conversation:
    """`lock`: hold the row for the transaction (PostgreSQL), so a visitor's turn waits for an agent's change
    rather than interleaving with it."""
    where = Conversation.id == conversation_id
    conversation = locked_conversation(db, where) if lock else db.get(Conversation, conversation_id)
    if conversation is None:
        raise DeskError(404, f"no conversation with id {conversation_id!r}")
    return conversation


def transcript(db: Session, conversation: Conversation, low_confidence: float) -> TranscriptOut:
    corrections = {c.message_id: c for c in db.scalars(
        select(Correction).join(Message, Message.id == Correction.message_id)
        .where(Message.conversation_id == conversation.id))}
    return TranscriptOut(
        **summary(db, conversation, low_confidence).model_dump(),
        slots={k: v for k, v in (conversation.slots or {}).items() if v is not None},
        active_form=conversation.active_form,
        transcript=[agent_message(m, corrections.get(m.id), low_confidence) for m in conversation.messages],
        notes=[note_view(n) for n in conversation.notes])


def note_view(note: Note) -> NoteOut:
    return NoteOut(id=note.id, text=note.text, agent_id=note.agent_id,
                   agent=note.agent.display_name if note.agent else None, created_at=note.created_at.isoformat())


def _owned_elsewhere(conversation: Conversation, agent: Agent) -> bool:
    return conversation.status == ConversationStatus.WITH_AGENT and conversation.agent_id not in (None, agent.id)


def _owner_name(conversation: Conversation) -> str:
    """The name of the agent a conversation is _owned_elsewhere by."""
    assert conversation.agent is not None, "owned elsewhere: agent_id is set, so the agent row exists"
    return conversation.agent.display_name


def take_over(db: Session, conversation: Conversation, agent: Agent) -> list[Event]:
    """A conditional update: of two agents taking the conversation at the same moment, exactly one gets it
    and the other a 409 (the database decides, not a read made before the write)."""
    if _owned_elsewhere(conversation, agent):
        raise DeskError(409, f"{_owner_name(conversation)} already has this conversation")
    if conversation.status == ConversationStatus.WITH_AGENT and conversation.agent_id == agent.id:
        return []
    free = or_(Conversation.status != ConversationStatus.WITH_AGENT, Conversation.agent_id.is_(None),
               Conversation.agent_id == agent.id)
    taken = cast(CursorResult, db.execute(update(Conversation).where(Conversation.id == conversation.id, free)
                                          .values(status=ConversationStatus.WITH_AGENT, agent_id=agent.id,
                                                  active_form=None, updated_at=utcnow())
                                          .execution_options(synchronize_session=False)))
    db.refresh(conversation)
    if taken.rowcount != 1:
        raise DeskError(409, f"{conversation.agent.display_name if conversation.agent else 'another agent'} "
                             "already has this conversation")
    return status_event(conversation)


def reply(db: Session, conversation: Conversation, agent: Agent, text: str) -> tuple[Message, list[Event]]:
    """An agent's message to the visitor; replying to a conversation nobody has takes it over."""
    events = take_over(db, conversation, agent)
    message = Message(conversation_id=conversation.id, role="agent", text=text, agent=agent)
    db.add(message)
    conversation.updated_at = utcnow()
    db.flush()
    return message, events + message_events(conversation.id, [message])


def add_note(db: Session, conversation: Conversation, agent: Agent, text: str) -> tuple[Note, list[Event]]:
    """Private: agents see it, the visitor never does."""
    note = Note(conversation_id=conversation.id, agent=agent, text=text)
    db.add(note)
    db.flush()
    return note, [Event((DESK,), {"type": "note", "conversation_id": conversation.id,
                                  "note": note_view(note).model_dump(mode="json")})]


def hand_back(db: Session, conversation: Conversation, agent: Agent) -> list[Event]:
    if _owned_elsewhere(conversation, agent):
        raise DeskError(409, f"{_owner_name(conversation)} has this conversation")
    if conversation.status == ConversationStatus.BOT:
        raise DeskError(409, "the bot already has this conversation")
    conversation.status, conversation.agent, conversation.failures = ConversationStatus.BOT, None, 0
    db.flush()
    return status_event(conversation)


def resolve(db: Session, conversation: Conversation, agent: Agent) -> list[Event]:
    if _owned_elsewhere(conversation, agent):
        raise DeskError(409, f"{_owner_name(conversation)} has this conversation")
    if conversation.status == ConversationStatus.RESOLVED:
        return []
    conversation.status, conversation.failures = ConversationStatus.RESOLVED, 0
    conversation.active_form = None
    db.flush()
    return status_event(conversation)


def relabel(db: Session, message_id: int, intent: str, agent: Agent, known: list[str]) -> Correction:
    """The intent a user message really had, kept for redistillation; the same intent as predicted
    confirms the prediction. A later relabelling of the same message replaces the earlier one.

    An admin's label is approved at once; an agent's waits for an admin before it may overturn a base
    training example, so an agent relabelling it to another intent takes back an earlier approval."""
    message = db.get(Message, message_id)
    if message is None:
        raise DeskError(404, f"no message with id {message_id}")
    if message.role != "user":
        raise DeskError(409, f"message {message_id} is a {message.role} message; only visitors' messages have "
                             "an intent")
    if intent not in known:
        raise DeskError(422, f"intent: {intent!r} is not one the model knows")
    correction = db.scalar(select(Correction).where(Correction.message_id == message_id))
    if correction is None:
        correction = Correction(message_id=message_id, text=message.text, predicted_intent=message.intent)
        db.add(correction)
    if agent.role is Role.ADMIN:
        correction.approved_by, correction.approved_at = agent.id, utcnow()
    elif correction.intent != intent:
        correction.approved_by, correction.approved_at = None, None
    correction.intent, correction.agent_id = intent, agent.id
    db.flush()
    return correction


def approve_correction(db: Session, message_id: int, admin: Agent, intent: str) -> Correction:
    """An admin vouches for an agent's correction to `intent`: redistillation may then let it overturn base data.
    One conditional update, so an agent's relabel between the admin's look and the click is never approved."""
    correction = db.scalar(select(Correction).where(Correction.message_id == message_id))
    if correction is None:
        raise DeskError(404, f"no correction of message {message_id}")
    approved = cast(CursorResult, db.execute(
        update(Correction).where(Correction.id == correction.id, Correction.intent == intent)
        .values(approved_by=func.coalesce(Correction.approved_by, admin.id),
                approved_at=func.coalesce(Correction.approved_at, utcnow()))
        .execution_options(synchronize_session=False)))
    if approved.rowcount != 1:
        raise DeskError(409, f"message {message_id} is no longer labelled {intent!r}; look at it again")
    db.refresh(correction)
    return correction


def find_corrections(db: Session, waiting: bool | None, limit: int, offset: int) -> list[CorrectionItem]:
    """Corrections and confirmations, oldest first; `waiting`: only those no admin approved (or only those
    one did)."""
    query = select(Correction, Message.conversation_id).join(Message, Message.id == Correction.message_id)
    if waiting is not None:
        query = query.where(Correction.approved_at.is_(None) if waiting else Correction.approved_at.is_not(None))
    names = agent_names(db)
    rows = db.execute(query.order_by(Correction.id).limit(limit).offset(offset))
    return [correction_view(c, conversation_id, names) for c, conversation_id in rows]


def agent_names(db: Session) -> dict[int, str]:
    return dict(db.execute(select(Agent.id, Agent.display_name)).all())


def correction_view(correction: Correction, conversation_id: str, names: dict[int, str]) -> CorrectionItem:
    return CorrectionItem(
        message_id=correction.message_id, text=correction.text, intent=correction.intent,
        predicted_intent=correction.predicted_intent, confirmed=correction.intent == correction.predicted_intent,
        conversation_id=conversation_id, agent_id=correction.agent_id,
        agent=names.get(correction.agent_id) if correction.agent_id is not None else None,
        created_at=correction.created_at.isoformat(), approved_by=correction.approved_by,
        approver=names.get(correction.approved_by) if correction.approved_by is not None else None,
        approved_at=correction.approved_at.isoformat() if correction.approved_at else None)


def _needs_review(low_confidence: float) -> list:
    """A visitor's message understood with low confidence, or answered with a thumbs-down, and not yet confirmed
    or corrected (conditions on `_user`)."""
    answered_badly = exists().where(Message.conversation_id == _user.conversation_id, Message.id > _user.id,
                                    Message.role == "bot", Message.feedback == "down",
                                    ~exists().where(_later_user.conversation_id == _user.conversation_id,
                                                    _later_user.role == "user", _later_user.id > _user.id,
                                                    _later_user.id < Message.id).correlate_except(_later_user))
    return [_user.role == "user", or_(_user.confidence < low_confidence, answered_badly),
            ~exists().where(Correction.message_id == _user.id)]


def review_counts(db: Session, low_confidence: float) -> dict[str, int]:
    """How many messages of each (predicted) intent are in the review queue."""
    return {intent: count for intent, count in db.execute(
        select(_user.intent, func.count()).where(*_needs_review(low_confidence)).group_by(_user.intent)) if intent}


def review_queue(db: Session, low_confidence: float, limit: int = 50) -> list[ReviewItem]:
    """Visitors' messages that need an agent's eye: understood with low confidence, or answered with a
    thumbs-down, and not yet confirmed or corrected."""
    rows = db.scalars(select(_user).where(*_needs_review(low_confidence)).order_by(_user.id.desc()).limit(limit))
    return [ReviewItem(**agent_message(m, low_confidence=low_confidence).model_dump(),
                       conversation_id=m.conversation_id) for m in rows]
