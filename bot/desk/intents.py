"""The intents page: for each intent the model knows, how well the served model does on it (golden-set precision
and recall, which intents its validation messages were taken for), how often visitors got it in the last days,
its messages waiting in the review queue, its answers' example questions, and example messages agents proposed
for it. An agent's example is a proposal an admin approves; the next redistillation learns approved ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.desk.desk import DeskError, agent_names, review_counts
from bot.infra.store import ExampleProposal, Message, ProposalStatus
from bot.model.reports import Metrics
from bot.model.templates import TemplateBook

DAYS = 14
MAX_WAITING_PER_AGENT = 200
"""An agent's examples waiting for an admin at most: proposals are reviewed by people, so they are bounded."""


class Confusion(BaseModel):
    intent: str
    messages: int = Field(description="Validation messages taken for the other intent, either way round.")


class ExampleOut(BaseModel):
    id: int
    intent: str
    text: str
    status: ProposalStatus
    agent: str | None
    created_at: str
    decider: str | None
    decided_at: str | None


class IntentRow(BaseModel):
    name: str
    precision: float | None = Field(description="On the served version's test (golden) set; null: not measured.")
    recall: float | None
    support: int | None = Field(description="Golden-set messages of the intent.")
    confused_with: list[Confusion] = Field(description="From the served version's validation predictions, most "
                                                       "first.")
    chosen: int = Field(description=f"Visitor messages understood as this intent in the last {DAYS} days.")
    to_review: int = Field(description="Its messages waiting in the review queue.")
    answers: list[str] = Field(description="The ids of the answers that serve it.")
    answer_examples: list[str] = Field(description="The example questions of those answers.")
    examples: list[ExampleOut] = Field(description="Examples agents proposed (waiting, approved or rejected).")


def _example_view(row: ExampleProposal, names: dict[int, str]) -> ExampleOut:
    return ExampleOut(id=row.id, intent=row.intent, text=row.text, status=row.status,
                      agent=names.get(row.agent_id) if row.agent_id is not None else None,
                      created_at=row.created_at.isoformat(),
                      decider=names.get(row.decided_by) if row.decided_by is not None else None,
                      decided_at=row.decided_at.isoformat() if row.decided_at else None)


def overview(db: Session, labels: list[str], metrics: Metrics | None, book: TemplateBook,
             low_confidence: float) -> list[IntentRow]:
    since = datetime.now(UTC) - timedelta(days=DAYS)
    counted = db.execute(select(Message.intent, func.count()).where(Message.role == "user", Message.created_at >= since)
                         .group_by(Message.intent))
    chosen = {intent: count for intent, count in counted if intent is not None}
    waiting = review_counts(db, low_confidence)
    names = agent_names(db)
    proposals: dict[str, list[ExampleOut]] = {}
    shown = or_(ExampleProposal.status != ProposalStatus.REJECTED, ExampleProposal.decided_at >= since)
    for proposal in db.scalars(select(ExampleProposal).where(shown).order_by(ExampleProposal.id.desc())):
        proposals.setdefault(proposal.intent, []).append(_example_view(proposal, names))
    report = metrics.student.per_intent if metrics is not None else {}
    confusions = metrics.confusions if metrics is not None else {}
    rows = []
    for name in labels:
        either_way: dict[str, int] = dict(confusions.get(name, {}))
        for other, row in confusions.items():
            if name in row:
                either_way[other] = either_way.get(other, 0) + row[name]
        figures = report.get(name)
        templates = book.for_intent(name)
        rows.append(IntentRow(
            name=name, precision=figures.precision if figures else None, recall=figures.recall if figures else None,
            support=int(figures.support) if figures else None,
            confused_with=[Confusion(intent=i, messages=n)
                           for i, n in sorted(either_way.items(), key=lambda kv: (-kv[1], kv[0]))],
            chosen=chosen.get(name, 0), to_review=waiting.get(name, 0), answers=[t.id for t in templates],
            answer_examples=[q for t in templates for q in t.examples], examples=proposals.get(name, [])))
    return rows


def propose(db: Session, labels: list[str], intent: str, texts: list[str], agent_id: int, approve: bool
            ) -> list[ExampleOut]:
    """Example messages for an intent the model knows (an admin's are approved at once)."""
    if intent not in labels:
        raise DeskError(404, f"the served model does not know intent {intent!r}; propose a new intent instead")
    known = {text.casefold() for text in db.scalars(select(ExampleProposal.text).where(
        ExampleProposal.intent == intent, ExampleProposal.status != ProposalStatus.REJECTED))}
    distinct: dict[str, str] = {}
    for text in texts:  # one of each, whatever its case, and none proposed (and not rejected) before
        distinct.setdefault(text.casefold(), text)
    texts = [text for folded, text in distinct.items() if folded not in known]
    waiting = db.scalar(select(func.count()).where(ExampleProposal.agent_id == agent_id,
                                                   ExampleProposal.status == ProposalStatus.PROPOSED)) or 0
    if not approve and waiting + len(texts) > MAX_WAITING_PER_AGENT:
        raise DeskError(409, f"you have {waiting} examples waiting for an admin; at most {MAX_WAITING_PER_AGENT} "
                             "may wait")
    now = datetime.now(UTC)
    rows = [ExampleProposal(intent=intent, text=text, agent_id=agent_id, created_at=now,
                            status=ProposalStatus.APPROVED if approve else ProposalStatus.PROPOSED,
                            decided_by=agent_id if approve else None, decided_at=now if approve else None)
            for text in texts]
    db.add_all(rows)
    db.flush()
    names = agent_names(db)
    return [_example_view(row, names) for row in rows]


def decide(db: Session, labels: list[str], example_id: int, approve: bool, admin_id: int) -> ExampleOut:
    row = db.get(ExampleProposal, example_id)
    if row is None:
        raise DeskError(404, f"no proposed example {example_id}")
    if approve and row.intent not in labels:
        raise DeskError(409, f"the served model no longer knows intent {row.intent!r}")
    row.status = ProposalStatus.APPROVED if approve else ProposalStatus.REJECTED
    row.decided_by, row.decided_at = admin_id, datetime.now(UTC)
    db.flush()
    return _example_view(row, agent_names(db))
