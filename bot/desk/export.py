"""Conversations handed over as files: JSON Lines (one conversation a line, exactly as the console's transcript
shows it, notes included) or CSV (one message or note a row, for a spreadsheet). Read a page at a time, so an
export of the whole store never holds it in memory."""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Callable, Iterator

from sqlalchemy.orm import Session

from bot.desk import desk
from bot.desk.views import TranscriptOut

PAGE = 100
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("conversation_id", "conversation_status", "conversation_started_at", "customer_id", "language",
               "csat", "kind", "message_id", "created_at", "role", "agent", "text", "intent", "confidence",
               "template", "decision", "model_version", "feedback", "corrected_intent")


class ExportFormat(enum.StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


def transcripts(sessions: Callable[[], Session], criteria: dict, low_confidence: float) -> Iterator[TranscriptOut]:
    """Every conversation `criteria` (desk.find_conversations's filters) match, most recently active first."""
    offset = 0
    while True:
        with sessions() as db:
            _total, rows = desk.find_conversations(db, limit=PAGE, offset=offset, **criteria)
            page = [desk.transcript(db, conversation, low_confidence) for conversation in rows]
        yield from page
        if len(rows) < PAGE:
            return
        offset += PAGE


def _cell(value) -> str:
    """A value as a spreadsheet shows it, never as a formula: visitors write these texts, and a cell starting
    with = + - @ (or a tab or return) would run in the admin's spreadsheet (OWASP's CSV injection advice)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in FORMULA_STARTS else text


def _csv_line(values: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_cell(v) for v in values])
    return buffer.getvalue()


def csv_rows(conversation: TranscriptOut) -> Iterator[str]:
    head = [conversation.id, conversation.status.value, conversation.created_at, conversation.customer_id,
            conversation.language, conversation.csat]
    for m in conversation.transcript:
        yield _csv_line([*head, "message", m.id, m.created_at, m.role, m.agent, m.text, m.intent, m.confidence,
                         m.template, m.decision, m.model_version, m.feedback,
                         m.correction.intent if m.correction else None])
    for note in conversation.notes:
        yield _csv_line([*head, "note", note.id, note.created_at, "agent", note.agent, note.text,
                         None, None, None, None, None, None, None])


def lines(found: Iterator[TranscriptOut], kind: ExportFormat) -> Iterator[str]:
    if kind is ExportFormat.JSONL:
        for conversation in found:
            yield conversation.model_dump_json() + "\n"
        return
    yield _csv_line(list(CSV_COLUMNS))
    for conversation in found:
        yield from csv_rows(conversation)
