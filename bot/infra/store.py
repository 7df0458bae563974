"""Everything the bot and the agents remember, through SQLAlchemy: SQLite (WAL) by default, PostgreSQL by
URL. The schema is owned by the Alembic migrations in bot/infra/migrations; `make_engine` brings a database
up to date before use.

    conversations  one per visitor session: status, slots, active form, the agent on it, CSAT
    messages       every turn (user, bot, agent); bot turns keep intent, confidence, template, decision
    notes          agents' private notes on a conversation
    corrections    an agent's relabelling of a user message's intent (what redistillation learns from); an
                   agent's needs an admin's approval before it may overturn the base training data
    new_intents    intents agents proposed (answer and examples), learned by the next redistillation once
                   an admin approved them
    answer_revisions  every change to an answer made in the console (an admin's is served at once, an agent's
                   once an admin approved it), laid over the served model's answer templates
    example_proposals  example messages agents proposed for an intent the model knows; learned by the next
                   redistillation once an admin approved them
    canned_replies agents' ready-made replies, inserted with `/shortcut`: shared (admins keep them) or personal
    erasures       a visitor's data erased on request: counts and digests of the erased texts, never the texts
    ownership_failures  failed attempts to prove an order is one's own (the lock-out counts them)
    agents         support-agent accounts (argon2 password hashes) and their login tokens
    orders         the shop's orders, which the order actions look up and cancel
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True)}


class Role(enum.StrEnum):
    """Agents work conversations and propose answers; admins also approve or reject proposals."""

    AGENT = "agent"
    ADMIN = "admin"


class ProposalStatus(enum.StrEnum):
    """An agent's new intent is only learned once an admin approved it."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


class ConversationStatus(enum.StrEnum):
    """Who has a conversation: the bot, nobody yet (a person was asked for), an agent, or nobody (resolved)."""

    BOT = "bot"
    WAITING_FOR_AGENT = "waiting_for_agent"
    WITH_AGENT = "with_agent"
    RESOLVED = "resolved"


def _string_enum(kind: type[enum.Enum], name: str) -> SqlEnum:
    """A VARCHAR with a CHECK of the allowed values (no native enum type: the same on SQLite and PostgreSQL)."""
    return SqlEnum(kind, name=name, native_enum=False, create_constraint=True, length=16,
                   values_callable=lambda members: [m.value for m in members])


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(_string_enum(Role, "agent_role"), default=Role.AGENT, server_default="agent")
    disabled_at: Mapped[datetime | None]
    """Set by `bot agent disable`: the account cannot log in and its tokens are gone."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]
    """When a console of theirs was last known open (its live socket): who is online, for assignment."""
    last_offered_at: Mapped[datetime | None]
    """When a waiting conversation was last offered to them (round-robin assignment)."""


class AgentToken(Base):
    """A login: only the token's SHA-256 is stored, so a leaked database gives no working tokens."""

    __tablename__ = "agent_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    agent: Mapped[Agent] = relationship()


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    token_hash: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str | None] = mapped_column(String(128), unique=True, index=True)
    """The client's sender id, for conversations held through the Rasa REST channel."""
    customer_id: Mapped[str | None] = mapped_column(String(128))
    """The shop's customer id, once the host site vouched for the visitor (identity verification)."""
    client_hash: Mapped[str | None] = mapped_column(String(32), index=True)
    """A hash of the address of the client that opened it (bot.infra.guards.client_hash), never the address: what
    the harvest caps per client and day."""
    customer_email: Mapped[str | None] = mapped_column(String(256))
    """The e-mail address the shop's page gave with that id: shown to agents, never taken as proof."""
    status: Mapped[ConversationStatus] = mapped_column(
        SqlEnum(ConversationStatus, native_enum=False, create_constraint=False, length=24,
                values_callable=lambda members: [m.value for m in members]),
        default=ConversationStatus.BOT, index=True)
    slots: Mapped[dict] = mapped_column(JSON, default=dict)
    active_form: Mapped[str | None] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    csat: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str | None] = mapped_column(String(8))
    """The language the visitor wrote in (ISO 639-1), set when it is one the model was not trained on: the bot
    handed the conversation to a person at once, and the inbox shows it to find an agent who speaks it."""
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    agent: Mapped[Agent | None] = relationship(lazy="joined")
    messages: Mapped[list[Message]] = relationship(back_populates="conversation", order_by="Message.id")
    notes: Mapped[list[Note]] = relationship(order_by="Note.id")


class Message(Base):
    """One turn's text; bot turns also keep what the model predicted and what the policy decided."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    role: Mapped[str] = mapped_column(String(8))
    """user, bot or agent."""
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float | None] = mapped_column(Float)
    ranking: Mapped[list | None] = mapped_column(JSON)
    template: Mapped[str | None] = mapped_column(String(128))
    decision: Mapped[str | None] = mapped_column(String(16))
    model_version: Mapped[str | None] = mapped_column(String(32))
    buttons: Mapped[list | None] = mapped_column(JSON)
    feedback: Mapped[str | None] = mapped_column(String(8))
    """A visitor's thumbs on a bot message: up or down."""
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    agent: Mapped[Agent | None] = relationship(lazy="joined")
    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    agent: Mapped[Agent | None] = relationship(lazy="joined")


class Correction(Base):
    """The intent an agent says a user message had; the message text is copied so it survives."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True, unique=True)
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(128))
    predicted_intent: Mapped[str | None] = mapped_column(String(128))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    """The admin who approved it (an admin's own correction is approved at once): only an approved correction
    may overturn a base training example."""
    approved_at: Mapped[datetime | None]


class NewIntent(Base):
    """An intent an agent proposed through the API, with its answer and example messages; the next
    redistillation learns it once an admin approved it."""

    __tablename__ = "new_intents"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    answer: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list] = mapped_column(JSON, default=list)
    examples: Mapped[list] = mapped_column(JSON)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    status: Mapped[ProposalStatus] = mapped_column(_string_enum(ProposalStatus, "proposal_status"),
                                                   default=ProposalStatus.PROPOSED, server_default="proposed")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    """The admin who approved or rejected it."""
    decided_at: Mapped[datetime | None]


class AnswerRevision(Base):
    """One change to one answer (a template, by id): its whole new content, or None when it was retired. The
    served content of an answer is its latest approved revision, else the model's own template (the seed).
    Each approved revision names the one it replaced (`base_id`, 0 for the seed), and one base is replaced
    only once, so two admins saving over the same revision cannot both win."""

    __tablename__ = "answer_revisions"
    __table_args__ = (Index("ux_answer_revisions_approved_base", "answer_id", "base_id", unique=True,
                            sqlite_where=text("status = 'approved'"), postgresql_where=text("status = 'approved'")),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    answer_id: Mapped[str] = mapped_column(String(128), index=True)
    content: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    """The template (bot.model.templates.Template) as JSON; None: the answer is retired."""
    base_id: Mapped[int] = mapped_column(Integer)
    """The approved revision this one was written over; 0: the model's own template, or none."""
    restored_from: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[ProposalStatus] = mapped_column(_string_enum(ProposalStatus, "proposal_status"),
                                                   default=ProposalStatus.PROPOSED)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    """None: written by `bot templates import`."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]


class Erasure(Base):
    """A visitor's conversations erased on request (bot.desk.erasure). It keeps how much went and the SHA-256 of
    each erased visitor text, never a text or who the visitor was: the redistillation job, which alone mounts its
    work folder and the teacher-output cache, removes those texts there at its next run (`distill erase` does
    it at once)."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    conversations: Mapped[int] = mapped_column(Integer)
    messages: Mapped[int] = mapped_column(Integer)
    digests: Mapped[list] = mapped_column(JSON)
    """SHA-256 (hex) of each erased visitor text, as written and as the training data normalises it."""


class ExampleProposal(Base):
    """A message an agent says is an example of an intent the model knows; redistillation learns it as a label
    once an admin approved it (an admin's own is approved at once)."""

    __tablename__ = "example_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    intent: Mapped[str] = mapped_column(String(128), index=True)
    text: Mapped[str] = mapped_column(Text)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[ProposalStatus] = mapped_column(_string_enum(ProposalStatus, "proposal_status"),
                                                   default=ProposalStatus.PROPOSED)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]


class CannedReply(Base):
    """A ready-made reply an agent inserts by typing `/` and its shortcut; `{slot}` placeholders are filled from
    the conversation. Shared ones (no owner) are kept by admins; an agent keeps their own."""

    __tablename__ = "canned_replies"
    __table_args__ = (
        Index("ux_canned_replies_shared", "shortcut", unique=True, sqlite_where=text("owner_id IS NULL"),
              postgresql_where=text("owner_id IS NULL")),
        Index("ux_canned_replies_personal", "owner_id", "shortcut", unique=True,
              sqlite_where=text("owner_id IS NOT NULL"), postgresql_where=text("owner_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shortcut: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    """None: shared by every agent."""
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


def text_digests(text: str) -> list[str]:
    """SHA-256 (hex) of a text as written, stripped and with its whitespace collapsed: the forms in which the
    training data and the teacher-output cache hold a visitor's message (distill.cache keys it by this hash)."""
    forms = dict.fromkeys([text, text.strip(), " ".join(text.split())])
    return [hashlib.sha256(form.encode()).hexdigest() for form in forms]


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    """NW and six digits."""
    email: Mapped[str] = mapped_column(String(256))
    customer_id: Mapped[str | None] = mapped_column(String(128), index=True)
    """The shop's id of the customer who placed it (what a verified visitor's identity names)."""
    status: Mapped[str] = mapped_column(String(24))
    """processing, shipped, delivered or cancelled."""
    items: Mapped[list] = mapped_column(JSON)
    total: Mapped[float] = mapped_column(Float)
    carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_code: Mapped[str | None] = mapped_column(String(64))
    placed_at: Mapped[datetime]
    expected_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class OwnershipFailure(Base):
    """A visitor named an order with an e-mail address (or an account) that is not its owner's."""

    __tablename__ = "ownership_failures"
    __table_args__ = (Index("ix_ownership_failures_conversation", "conversation_id", "created_at"),
                      Index("ix_ownership_failures_order", "order_id", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(128))
    """Our conversation's id, or the sender id of a Rasa assistant calling the action server."""
    order_id: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def locked_conversation(db: Session, where) -> Conversation | None:
    """The conversation matching `where`, its row locked until the transaction ends, so a visitor's turn and
    an agent's change wait for each other rather than interleave. PostgreSQL only: SQLite has no row locks
    (it writes one transaction at a time). A row read after waiting for its lock is current, but the agent
    joined to it was read before the wait, so it is read again."""
    conversation = db.scalar(select(Conversation).where(where).with_for_update(of=Conversation))
    if conversation is not None and db.get_bind().dialect.name != "sqlite":
        db.refresh(conversation)
    return conversation


def upgrade(engine: Engine) -> None:
    """Apply the Alembic migrations this database lacks. A database made before migrations existed (its
    tables there, no version row) is first stamped with the first revision, which is that schema."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # replicas starting together migrate one after another
            connection.execute(text("SELECT pg_advisory_xact_lock(7240431)"))
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "conversations" in tables and "alembic_version" not in tables:
            command.stamp(config, "0001")
        command.upgrade(config, "head")


def make_engine(url: str, migrate: bool = True, pool_size: int = 5, max_overflow: int = 2) -> Engine:
    """An engine on an up-to-date schema; SQLite gets WAL so readers do not block the writer. `pool_size`: as
    many connections as threads that use one at once (the API passes its thread settings), so that a request
    never waits for a connection and replicas × workers × pool stays within what PostgreSQL allows."""
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"check_same_thread": False} if is_sqlite else {},
                           pool_pre_ping=not is_sqlite, pool_size=pool_size, max_overflow=max_overflow)
    if is_sqlite:
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across crashes, one fsync per checkpoint
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    if migrate:
        upgrade(engine)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
