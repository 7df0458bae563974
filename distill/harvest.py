"""What production taught us, read from the bot's store: agents' corrections and confirmations, answers
visitors liked, and the messages nobody labelled. Read-only: a redistillation never changes the store. The
database itself enforces it (SQLite opened read-only, PostgreSQL sessions read-only), and a store whose
schema is not the one this code knows is refused, never migrated: migrating is the API's job."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import aliased

from bot.store import MIGRATIONS, Correction, Message, NewIntent, make_engine, make_sessionmaker

_PAYLOAD = re.compile(r"^/[A-Za-z0-9_]+$")  # a quick-reply button, not something a visitor wrote


@dataclass
class Labelled:
    text: str
    intent: str
    source: str
    """correction (an agent changed the intent), confirmation (an agent kept it), thumbs_up, or new_intent
    (an example of an intent an agent added)."""
    predicted: str | None = None


@dataclass
class Harvest:
    labelled: list[Labelled] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    new_intents: list[dict] = field(default_factory=list)
    """Intents agents added through the API: name, answer, buttons, examples."""
    new_since: dict = field(default_factory=dict)
    """How many of each kind arrived since the last run (what makes a run worth doing)."""

    def count(self, source: str) -> int:
        return sum(1 for item in self.labelled if item.source == source)


class StoreError(ValueError):
    """The store cannot be read: missing, unreachable, or not at the schema this code reads."""


def read_only_engine(db_url: str) -> Engine:
    """An engine that can only read the store and never migrates it: SQLite opened with mode=ro, PostgreSQL
    with every transaction read-only (default_transaction_read_only)."""
    try:
        url = make_url(db_url)
    except ArgumentError as exc:
        raise StoreError(f"{db_url!r} is not a database URL: {exc}") from None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).is_file():
            raise StoreError(f"{db_url}: no such SQLite database")
        # Not make_engine: its WAL pragma would write, and a copy made with `.backup` may not be in WAL mode.
        engine = create_engine(url.set(database=f"file:{quote(str(Path(url.database).resolve()))}",
                                       query={**url.query, "mode": "ro", "uri": "true"}))
    elif url.get_backend_name() == "postgresql":
        options = " ".join(filter(None, [url.query.get("options"), "-c default_transaction_read_only=on"]))
        engine = make_engine(url.update_query_dict({"options": options}).render_as_string(hide_password=False),
                             migrate=False, pool_size=2)
    else:
        raise StoreError(f"{db_url}: the store is SQLite or PostgreSQL")
    try:
        _check_schema(engine, db_url)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _check_schema(engine: Engine, db_url: str) -> None:
    """The store's migration revision must be the newest this code has (what its queries expect)."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    expected = set(ScriptDirectory.from_config(config).get_heads())
    try:
        with engine.connect() as connection:
            found = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        raise StoreError(f"{make_url(db_url).render_as_string()}: cannot read it as the bot's store "
                         f"({getattr(exc, 'orig', None) or exc})") from exc
    if found != expected:
        raise StoreError(f"{make_url(db_url).render_as_string()}: the store's schema is at revision "
                         f"{', '.join(sorted(found)) or 'none (not migrated)'}, this code reads "
                         f"{', '.join(sorted(expected))}; harvest with the API's release, once the API has started "
                         "on this store (starting migrates it)")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def collect(db_url: str, since: datetime | None) -> Harvest:
    """Every correction and confirmation and every thumbed-up answer (labels keep their value), and the
    visitors' messages since `since` that nobody labelled (for the teacher to label)."""
    engine = read_only_engine(db_url)
    harvest = Harvest()
    try:
        with make_sessionmaker(engine)() as db:
            labelled_ids = set()
            fresh = {"correction": 0, "confirmation": 0, "thumbs_up": 0, "new_intent": 0, "unlabelled": 0}
            approved = select(NewIntent).where(NewIntent.status == "approved")  # agents' proposals wait for an admin
            for intent in db.scalars(approved.order_by(NewIntent.created_at)):
                harvest.new_intents.append({"name": intent.name, "answer": intent.answer, "buttons": intent.buttons,
                                            "examples": intent.examples})
                harvest.labelled += [Labelled(text, intent.name, "new_intent") for text in intent.examples]
                fresh["new_intent"] += since is None or _aware(intent.created_at) > since
            for correction, message in db.execute(select(Correction, Message)
                                                  .join(Message, Message.id == Correction.message_id)
                                                  .order_by(Correction.id)):
                source = "confirmation" if correction.intent == correction.predicted_intent else "correction"
                harvest.labelled.append(Labelled(correction.text, correction.intent, source,
                                                 correction.predicted_intent))
                labelled_ids.add(message.id)
                fresh[source] += since is None or _aware(correction.created_at) > since
            for message, created in _thumbed_up(db):
                if message.id not in labelled_ids and not _PAYLOAD.match(message.text.strip()):
                    harvest.labelled.append(Labelled(message.text, message.intent, "thumbs_up", message.intent))
                    labelled_ids.add(message.id)
                    fresh["thumbs_up"] += since is None or _aware(created) > since
            query = select(Message).where(Message.role == "user").order_by(Message.id)
            if since is not None:
                query = query.where(Message.created_at > since)
            for message in db.scalars(query):
                text = message.text.strip()
                if message.id not in labelled_ids and not _PAYLOAD.match(text) and len(text) >= 3:
                    harvest.unlabelled.append(message.text)
            harvest.unlabelled = list(dict.fromkeys(harvest.unlabelled))
            fresh["unlabelled"] = len(harvest.unlabelled)
            harvest.new_since = fresh
    finally:
        engine.dispose()
    return harvest


def _thumbed_up(db):
    """Visitors' messages whose answer (the bot's next message, before the visitor wrote again) got a
    thumbs-up, with when the answer was given."""
    answer, later = aliased(Message), aliased(Message)
    between = (later.conversation_id == Message.conversation_id) & (later.role == "user") & \
              (later.id > Message.id) & (later.id < answer.id)
    return db.execute(select(Message, answer.created_at)
                      .join(answer, (answer.conversation_id == Message.conversation_id) & (answer.id > Message.id))
                      .where(Message.role == "user", Message.intent.is_not(None), answer.role == "bot",
                             answer.feedback == "up", answer.decision == "answer",
                             ~select(later.id).where(between).exists())
                      .order_by(Message.id)).all()
