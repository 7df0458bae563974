"""Answers as content: admins create, edit, retire and restore the bot's answer templates in the console, and
every change is a revision with its author, time and diff. An agent's change is a proposal until an admin
approves it; an admin's is approved at once. The approved revisions are laid over the served model's own
templates (bot.model.templates.AnswerEdits), so an answer changes without redistillation.

Each operation works inside the caller's transaction; problems are DeskErrors (their HTTP status says why)."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import yaml
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.desk.desk import DeskError, agent_names, flush_unique
from bot.infra.store import AnswerRevision, ProposalStatus
from bot.model.domain import FORMS
from bot.model.templates import AnswerEdits, PlaceholderError, Template, TemplateBook

SEED = 0
"""The revision number of a model's own template: what an answer is before its first approved change."""


class AnswerState(enum.StrEnum):
    SERVED = "served"
    RETIRED = "retired"
    PROPOSED = "proposed"
    """A new answer an agent proposed, not served until an admin approves it."""
    REJECTED = "rejected"
    """A new answer whose proposals were all rejected: never served."""


class AnswerOut(BaseModel):
    """An answer as served (when retired: as it was last served; when only proposed: as proposed)."""

    template: Template
    revision: int = Field(description="The approved revision served; 0: the model's own template (or none yet).")
    state: AnswerState
    pending: int = Field(description="Proposed revisions waiting for an admin.")


class RevisionOut(BaseModel):
    id: int
    answer_id: str
    template: Template | None = Field(description="The answer's content; null: this revision retired it.")
    base_id: int = Field(description="The approved revision it was written over (0: the model's own template).")
    restored_from: int | None
    status: ProposalStatus
    author: str | None = Field(description="null: written by `bot templates import`.")
    created_at: str
    decider: str | None
    decided_at: str | None
    diff: list[str] = Field(description="Unified diff (YAML) from the revision it was written over.")


class AnswerHistory(BaseModel):
    answer: AnswerOut
    seed: Template | None = Field(description="The served model's own template of this id, if it has one.")
    revisions: list[RevisionOut] = Field(description="Newest first.")


@dataclass(frozen=True)
class Rules:
    """What an answer may name: the served model's intents and the slots its templates define."""

    intents: frozenset[str]
    slots: frozenset[str]

    def check(self, template: Template) -> None:
        """422 unless the served model can choose and render `template`."""
        if template.intent not in self.intents:
            raise DeskError(422, f"intent: the served model does not know {template.intent!r}; propose a new "
                                 "intent instead (it is learned at the next redistillation)")
        try:
            unknown = template.placeholders() - self.slots
        except PlaceholderError as exc:
            raise DeskError(422, f"text: {exc}") from None
        if unknown:
            raise DeskError(422, f"text: unknown placeholders {sorted(unknown)}; known: {sorted(self.slots)}")
        if template.action is not None and template.action not in FORMS:
            raise DeskError(422, f"action: unknown {template.action!r} (known: {', '.join(sorted(FORMS))})")
        if any(not q.strip() for q in template.examples):
            raise DeskError(422, "examples: an example is empty")
        for button in template.buttons:
            target = button.payload.removeprefix("/")
            if button.payload.startswith("/") and target not in self.intents:
                raise DeskError(422, f"buttons: payload {button.payload!r} names an unknown intent")


def _approved(db: Session):
    return select(AnswerRevision).where(AnswerRevision.status == ProposalStatus.APPROVED)


def edits_version(db: Session) -> tuple[int, int]:
    """Changes whenever an answer does (approvals only add rows or turn proposals approved): cheap to poll."""
    count, highest = db.execute(select(func.count(), func.max(AnswerRevision.id))
                                .where(AnswerRevision.status == ProposalStatus.APPROVED)).one()
    return int(count), int(highest or 0)


def _latest(revisions: Iterable[AnswerRevision]) -> dict[str, AnswerRevision]:
    """Each answer's served revision: follow its approved revisions from the seed, each written over the one
    before (a unique index keeps one approved revision per base, so the chain never forks)."""
    over: dict[str, dict[int, AnswerRevision]] = {}
    for row in revisions:
        over.setdefault(row.answer_id, {})[row.base_id] = row
    latest = {}
    for answer_id, by_base in over.items():
        revision = SEED
        while revision in by_base:
            latest[answer_id] = by_base[revision]
            revision = by_base[revision].id
    return latest


def served_edits(db: Session) -> AnswerEdits:
    """The console's changes as the runtime lays them over a model's templates."""
    version = edits_version(db)
    latest = _latest(db.scalars(_approved(db)))
    return AnswerEdits(version=version,
                       templates=tuple(Template.model_validate(r.content) for r in latest.values() if r.content),
                       retired=frozenset(a for a, r in latest.items() if r.content is None))


def _current(db: Session, answer_id: str) -> AnswerRevision | None:
    return _latest(db.scalars(_approved(db).where(AnswerRevision.answer_id == answer_id))).get(answer_id)


def answers(db: Session, own: TemplateBook) -> list[AnswerOut]:
    """Every answer: the model's own templates in their order, then those added here, oldest first."""
    latest = _latest(db.scalars(_approved(db)))
    proposed = list(db.scalars(select(AnswerRevision).where(AnswerRevision.status == ProposalStatus.PROPOSED)
                               .order_by(AnswerRevision.id)))
    pending: dict[str, int] = {}
    for proposal in proposed:
        pending[proposal.answer_id] = pending.get(proposal.answer_id, 0) + 1
    seeds = {t.id: t for t in own.templates}
    added = sorted((a for a in latest if a not in seeds), key=lambda a: latest[a].id)
    only_proposed = list(dict.fromkeys(r.answer_id for r in proposed if r.answer_id not in seeds
                                       and r.answer_id not in latest and r.content))
    out = []
    for answer_id in [*seeds, *added]:
        row = latest.get(answer_id)
        if row is None:
            template, state = seeds[answer_id], AnswerState.SERVED
        elif row.content is None:
            template, state = seeds.get(answer_id) or _last_content(db, answer_id), AnswerState.RETIRED
        else:
            template, state = Template.model_validate(row.content), AnswerState.SERVED
        out.append(AnswerOut(template=template, revision=row.id if row else SEED, state=state,
                             pending=pending.get(answer_id, 0)))
    for answer_id in only_proposed:
        first = next(r for r in proposed if r.answer_id == answer_id)
        out.append(AnswerOut(template=Template.model_validate(first.content), revision=SEED,
                             state=AnswerState.PROPOSED, pending=pending[answer_id]))
    return out


def _last_content(db: Session, answer_id: str) -> Template:
    """The last content an answer had (to show a retired answer that the model never had)."""
    row = db.scalar(_approved(db).where(AnswerRevision.answer_id == answer_id, AnswerRevision.content.is_not(None))
                    .order_by(AnswerRevision.id.desc()).limit(1))
    assert row is not None, "an answer added here had content before it was retired"
    return Template.model_validate(row.content)


def _yaml(template: Template | None) -> list[str]:
    if template is None:
        return ["(retired)\n"]
    return yaml.safe_dump(template.model_dump(exclude_defaults=True), allow_unicode=True, sort_keys=False,
                          width=100).splitlines(keepends=True)


def diff(before: Template | None, after: Template | None, before_name: str, after_name: str) -> list[str]:
    return [line.rstrip("\n") for line in difflib.unified_diff(_yaml(before), _yaml(after), before_name, after_name)]


def _template(content: dict | None) -> Template | None:
    return Template.model_validate(content) if content else None


def history(db: Session, own: TemplateBook, answer_id: str) -> AnswerHistory:
    rows = list(db.scalars(select(AnswerRevision).where(AnswerRevision.answer_id == answer_id)
                           .order_by(AnswerRevision.id.desc())))
    seed = next((t for t in own.templates if t.id == answer_id), None)
    if seed is None and not rows:
        raise DeskError(404, f"no answer {answer_id!r}")
    by_id = {r.id: r for r in rows}
    names = agent_names(db)

    def content_of(revision: int) -> Template | None:
        return seed if revision == SEED else _template(by_id[revision].content) if revision in by_id else None

    def name_of(revision: int) -> str:
        return "the model's own" if revision == SEED else f"revision {revision}"

    views = [RevisionOut(id=r.id, answer_id=r.answer_id, template=_template(r.content), base_id=r.base_id,
                         restored_from=r.restored_from, status=r.status,
                         author=names.get(r.author_id) if r.author_id is not None else None,
                         created_at=r.created_at.isoformat(),
                         decider=names.get(r.decided_by) if r.decided_by is not None else None,
                         decided_at=r.decided_at.isoformat() if r.decided_at else None,
                         diff=diff(content_of(r.base_id), _template(r.content), name_of(r.base_id), name_of(r.id)))
             for r in rows]
    listed = next((a for a in answers(db, own) if a.template.id == answer_id), None)
    if listed is None:  # only rejected proposals: shown as the last one proposed
        last = next(r for r in rows if r.content)
        listed = AnswerOut(template=Template.model_validate(last.content), revision=SEED, state=AnswerState.REJECTED,
                           pending=0)
    return AnswerHistory(answer=listed, seed=seed, revisions=views)


def _known(db: Session, own: TemplateBook, answer_id: str) -> bool:
    """The model has it, or a revision that is not rejected names it (a proposed new answer reserves its id)."""
    return any(t.id == answer_id for t in own.templates) or (db.scalar(
        select(func.count()).where(AnswerRevision.answer_id == answer_id,
                                   AnswerRevision.status != ProposalStatus.REJECTED)) or 0) > 0


def _write(db: Session, answer_id: str, content: Template | None, base_id: int, author_id: int | None,
           approve: bool, restored_from: int | None = None) -> AnswerRevision:
    """A new revision written over `base_id`, which must be what is served (else 409: someone changed it)."""
    current = _current(db, answer_id)
    served = current.id if current is not None else SEED
    if base_id != served:
        raise DeskError(409, f"answer {answer_id!r} changed since revision {base_id} (it is at {served} now): "
                             "reload it and make the change again")
    now = datetime.now(UTC)
    row = AnswerRevision(answer_id=answer_id, content=content.model_dump(mode="json") if content else None,
                         base_id=base_id, restored_from=restored_from, author_id=author_id, created_at=now,
                         status=ProposalStatus.APPROVED if approve else ProposalStatus.PROPOSED,
                         decided_by=author_id if approve else None, decided_at=now if approve else None)
    db.add(row)
    _flush_once_per_base(db, answer_id)
    return row


def _flush_once_per_base(db: Session, answer_id: str) -> None:
    """Two approvals over the same base (saved at once by two admins) break a unique index: 409."""
    flush_unique(db, f"answer {answer_id!r} was just changed by someone else: reload it and make the change again")


def _served(db: Session, own: TemplateBook, answer_id: str, current: AnswerRevision | None = None) -> None:
    """409 unless the answer is served now (there is something to retire)."""
    current = current or _current(db, answer_id)
    has_seed = any(t.id == answer_id for t in own.templates)
    if (current is not None and current.content is None) or (current is None and not has_seed):
        raise DeskError(409, f"answer {answer_id!r} is not served: nothing to retire (reject a proposal instead)")


def create(db: Session, own: TemplateBook, rules: Rules, template: Template, author_id: int | None,
           approve: bool) -> AnswerRevision:
    """A new answer (409 when the id is taken, by a model's template or a change made here)."""
    if _known(db, own, template.id):
        raise DeskError(409, f"answer {template.id!r} exists already; edit it instead")
    rules.check(template)
    return _write(db, template.id, template, SEED, author_id, approve)


def edit(db: Session, own: TemplateBook, rules: Rules, template: Template, base_id: int, author_id: int | None,
         approve: bool) -> AnswerRevision:
    if not _known(db, own, template.id):
        raise DeskError(404, f"no answer {template.id!r}")
    rules.check(template)
    return _write(db, template.id, template, base_id, author_id, approve)


def retire(db: Session, own: TemplateBook, answer_id: str, base_id: int, author_id: int | None,
           approve: bool) -> AnswerRevision:
    """The bot stops using the answer (restore an earlier revision to use it again)."""
    if not _known(db, own, answer_id):
        raise DeskError(404, f"no answer {answer_id!r}")
    _served(db, own, answer_id)
    return _write(db, answer_id, None, base_id, author_id, approve)


def restore(db: Session, own: TemplateBook, rules: Rules, answer_id: str, revision: int, base_id: int,
            author_id: int | None, approve: bool) -> AnswerRevision:
    """A new revision with the content of `revision` (0: the model's own template)."""
    if revision == SEED:
        content = next((t for t in own.templates if t.id == answer_id), None)
        if content is None:
            raise DeskError(404, f"the served model has no template {answer_id!r} of its own")
    else:
        old = db.get(AnswerRevision, revision)
        if old is None or old.answer_id != answer_id:
            raise DeskError(404, f"answer {answer_id!r} has no revision {revision}")
        if old.content is None:
            raise DeskError(422, f"revision {revision} retired the answer; retire it instead")
        content = Template.model_validate(old.content)
    rules.check(content)
    return _write(db, answer_id, content, base_id, author_id, approve, restored_from=revision)


def decide(db: Session, own: TemplateBook, rules: Rules, revision: int, approve: bool, admin_id: int
           ) -> AnswerRevision:
    """An admin approves a proposed revision (409 if the answer changed since it was proposed) or rejects it."""
    row = db.get(AnswerRevision, revision)
    if row is None:
        raise DeskError(404, f"no answer revision {revision}")
    if row.status is not ProposalStatus.PROPOSED:
        raise DeskError(409, f"revision {revision} is {row.status.value} already")
    if approve:
        current = _current(db, row.answer_id)
        if row.content is None:
            _served(db, own, row.answer_id, current)
        if (current.id if current is not None else SEED) != row.base_id:
            raise DeskError(409, f"answer {row.answer_id!r} changed since revision {revision} was proposed: "
                                 "reject it, or restore it over the current one")
        if row.content is not None:
            rules.check(Template.model_validate(row.content))  # the model or the slots may have changed
    row.status = ProposalStatus.APPROVED if approve else ProposalStatus.REJECTED
    row.decided_by, row.decided_at = admin_id, datetime.now(UTC)
    _flush_once_per_base(db, row.answer_id)
    return row


def import_book(db: Session, own: TemplateBook, rules: Rules, book: TemplateBook, retire_missing: bool
                ) -> tuple[list[str], list[str]]:
    """Make the served answers those of `book` (a templates file), as approved revisions with no author:
    (changed or added ids, retired ids). Answers the same as served are left alone; with `retire_missing`, an
    answer the file lacks is retired."""
    served = {a.template.id: a for a in answers(db, own)}
    changed, retired = [], []
    for template in book.templates:
        try:
            rules.check(template)
        except DeskError as exc:
            raise DeskError(exc.status, f"template {template.id!r}: {exc}") from None
        now = served.get(template.id)
        if now is not None and now.state is AnswerState.SERVED and now.template == template:
            continue
        _write(db, template.id, template, now.revision if now else SEED, None, approve=True)
        changed.append(template.id)
    if retire_missing:
        wanted = {t.id for t in book.templates}
        for answer_id, now in served.items():
            if answer_id not in wanted and now.state is AnswerState.SERVED:
                _write(db, answer_id, None, now.revision, None, approve=True)
                retired.append(answer_id)
    return changed, retired
