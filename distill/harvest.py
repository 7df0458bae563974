"""What production taught us, read from the bot's store: the labels people vouch for, and the visitors'
messages nobody labelled (for the teacher to label). Read-only: a redistillation never changes the store. The
database itself enforces it (SQLite opened read-only, PostgreSQL sessions read-only), and a store whose
schema is not the one this code knows is refused, never migrated: migrating is the API's job.

Strangers must not steer what the bot learns. So a label comes only from agents (corrections and
confirmations) and from new intents an admin approved; a visitor's thumbs-up is counted for the report and
used for nothing else (it would turn the model's own guess into a label, for anyone who clicks). Visitors'
messages only go to the teacher, deduplicated and capped per conversation, per client and day, and per day,
so that no one client can flood the unlabelled data."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.infra.store import (
    MIGRATIONS,
    Conversation,
    Correction,
    ExampleProposal,
    Message,
    NewIntent,
    ProposalStatus,
    make_engine,
    make_sessionmaker,
)

_PAYLOAD = re.compile(r"^/\w+(\{.*\})?$", re.DOTALL)  # a quick-reply button, not something a visitor wrote
STREAM_BATCH = 1000
"""Visitors' messages are read this many rows at a time (a server-side cursor on PostgreSQL)."""
UNKNOWN_CLIENT = "unknown"
"""The one key every conversation without a client hash counts under (made before it was kept, or whose
client address was unknown)."""
DROP_REASONS = ("button", "too_short", "labelled", "duplicate", "per_conversation", "per_client", "per_day")


class LabelSource(StrEnum):
    CORRECTION = "correction"
    """An agent gave the message another intent than the model predicted."""
    CONFIRMATION = "confirmation"
    """An agent kept the predicted intent."""
    NEW_INTENT = "new_intent"
    """An example of an intent an agent proposed and an admin approved."""
    EXAMPLE = "example"
    """A message an agent proposed as an example of an intent the model knows, approved by an admin."""


@dataclass(frozen=True)
class Labelled:
    text: str
    intent: str
    source: LabelSource
    predicted: str | None = None
    approved: bool = False
    """An admin vouched for it (an admin's own label, an approved correction, an approved new intent): only
    then may it overturn a base training example."""
    fresh: bool = False
    """Made (or approved) since the last run: the candidate must get the held-out fresh corrections right more
    often than the current model; earlier ones it must only not get worse on."""


@dataclass(frozen=True)
class NewIntentSpec:
    """An intent an admin approved: what the retrieval index answers with, and what the student learns."""

    name: str
    answer: str
    buttons: list
    examples: list[str]


@dataclass(frozen=True)
class HarvestLimits:
    """How much of the visitors' unlabelled messages one run takes, so no one can flood it.

    per_conversation 20: a real conversation rarely has more visitor turns; beyond that it is a script (or one
    voice that would outweigh the rest). per_client_per_day 100: one address may be a whole office or a mobile
    carrier's NAT, so five conversations' worth, no more; one scripted client then adds at most 5% of a day.
    per_day 2000: the teacher labels every one, so this bounds a nightly run's cost, and it keeps one day's
    traffic small beside the base data. min_chars 3 (after normalising): "ok", "?" and "hi" carry no intent
    the base data lacks."""

    per_conversation: int = 20
    per_client_per_day: int = 100
    per_day: int = 2000
    min_chars: int = 3


@dataclass
class Harvest:
    labelled: list[Labelled] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    new_intents: list[NewIntentSpec] = field(default_factory=list)
    thumbs_up: int = 0
    """Answers visitors thumbed up in the window: counted for the report, never a label."""
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    """Why visitors' messages in the window were left out of `unlabelled` (DROP_REASONS)."""
    new_since: dict[str, int] = field(default_factory=dict)
    """How many of each kind arrived (or, for labels, were approved) in the window: what makes a run worth
    doing. Thumbs-ups are not among them: they teach nothing."""

    def count(self, source: LabelSource) -> int:
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
        given = url.query.get("options")  # a tuple when the URL repeats it; libpq's options are space-separated
        given = " ".join(given) if isinstance(given, tuple) else given
        options = " ".join(filter(None, [given, "-c default_transaction_read_only=on"]))
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


@dataclass(frozen=True)
class _Window:
    since: datetime | None
    until: datetime | None

    def holds(self, moment: datetime | None) -> bool:
        if moment is None:
            return False
        moment = _aware(moment)
        return (self.since is None or moment >= self.since) and (self.until is None or moment < self.until)

    def where(self, column) -> list:
        return ([column >= self.since] if self.since is not None else []) + \
               ([column < self.until] if self.until is not None else [])


def collect(db_url: str, since: datetime | None, until: datetime | None = None,
            limits: HarvestLimits = HarvestLimits()) -> Harvest:
    """Every label people vouch for (labels keep their value from run to run), and the visitors' messages
    written in [since, until) that nobody labelled, deduplicated and capped by `limits`. `until` lets the
    caller freeze the window at the run's start, so that the next run's `since` can be exactly there."""
    window = _Window(since and _aware(since).astimezone(UTC), until and _aware(until).astimezone(UTC))
    engine = read_only_engine(db_url)
    harvest = Harvest()
    fresh = Counter({source.value: 0 for source in LabelSource})
    try:
        with make_sessionmaker(engine)() as db:
            approved = select(NewIntent).where(NewIntent.status == ProposalStatus.APPROVED)
            for intent in db.scalars(approved.order_by(NewIntent.created_at)):
                harvest.new_intents.append(NewIntentSpec(intent.name, intent.answer, list(intent.buttons or []),
                                                         list(intent.examples)))
                harvest.labelled += [Labelled(text, intent.name, LabelSource.NEW_INTENT, approved=True)
                                     for text in intent.examples]
                fresh[LabelSource.NEW_INTENT] += window.holds(intent.created_at) or window.holds(intent.decided_at)
            given: list[tuple[datetime, int, Labelled]] = []  # agents' labels in the order they took effect
            for example in db.scalars(select(ExampleProposal).where(ExampleProposal.status == ProposalStatus.APPROVED)
                                      .order_by(ExampleProposal.id)):
                new = bool(window.holds(example.decided_at))
                given.append((_aware(example.decided_at or example.created_at), 0,
                              Labelled(example.text, example.intent, LabelSource.EXAMPLE, None, True, new)))
                fresh[LabelSource.EXAMPLE] += new
            for correction in db.scalars(select(Correction).order_by(Correction.id)):
                source = (LabelSource.CONFIRMATION if correction.intent == correction.predicted_intent
                          else LabelSource.CORRECTION)
                new = window.holds(correction.created_at) or window.holds(correction.approved_at)
                given.append((_aware(correction.approved_at or correction.created_at), 1,
                              Labelled(correction.text, correction.intent, source, correction.predicted_intent,
                                       correction.approved_at is not None, bool(new))))
                fresh[source] += bool(new)
            harvest.labelled += [label for _at, _kind, label in sorted(given, key=lambda g: (g[0], g[1]))]
            harvest.thumbs_up = db.scalar(select(func.count()).select_from(Message).where(
                Message.role == "bot", Message.feedback == "up", *window.where(Message.created_at)))
            harvest.unlabelled = _unlabelled(db, window, limits, [item.text for item in harvest.labelled],
                                             harvest.dropped)
    finally:
        engine.dispose()
    harvest.new_since = {**fresh, "unlabelled": len(harvest.unlabelled)}
    return harvest


def _unlabelled(db, window: _Window, limits: HarvestLimits, labelled_texts: list[str],
                dropped: dict[str, int]) -> list[str]:
    """Visitors' messages in the window, in id order, streamed: the first of each normalised text that is no
    button, not too short, not labelled, and within the caps. A duplicate costs no allowance. The part of
    `since`'s day before the window (an earlier run's harvest) is read too and counted against the day's caps,
    not kept: two runs in one day do not give a client two days' allowance. Every set and counter here grows
    only with the messages counted, which the caps bound."""
    from distill.training_set import normalise  # imported here: training_set imports this module's types

    labelled = {normalise(text) for text in labelled_texts}
    day_start = window.since and window.since.replace(hour=0, minute=0, second=0, microsecond=0)
    query = (select(Message.text, Message.conversation_id, Message.created_at, Conversation.client_hash)
             .join(Conversation, Conversation.id == Message.conversation_id)
             .where(Message.role == "user", *_Window(day_start, window.until).where(Message.created_at))
             .order_by(Message.id).execution_options(yield_per=STREAM_BATCH))
    kept: list[str] = []
    seen: set[str] = set()
    per_conversation: Counter[str] = Counter()
    per_client: Counter[tuple[str, date]] = Counter()
    per_day: Counter[date] = Counter()
    for text, conversation_id, created_at, client in db.execute(query):
        key, day = normalise(text), _aware(created_at).astimezone(UTC).date()
        client_day = (client or UNKNOWN_CLIENT, day)
        if _PAYLOAD.match(text.strip()):
            reason = "button"
        elif len(key) < limits.min_chars:
            reason = "too_short"
        elif key in labelled:
            reason = "labelled"
        elif key in seen:
            reason = "duplicate"
        elif per_conversation[conversation_id] >= limits.per_conversation:
            reason = "per_conversation"
        elif per_client[client_day] >= limits.per_client_per_day:
            reason = "per_client"
        elif per_day[day] >= limits.per_day:
            reason = "per_day"
        else:
            seen.add(key)
            per_conversation[conversation_id] += 1
            per_client[client_day] += 1
            per_day[day] += 1
            if window.holds(created_at):
                kept.append(text)
            continue
        if window.holds(created_at):
            dropped[reason] += 1
    return kept
