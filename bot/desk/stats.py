"""Figures for the console's dashboard: per day, how many conversations, how often the bot handed off (per
conversation) or fell back (per bot message), how confident it was, how satisfied visitors were; and the
served model's own figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.orm import Session

from bot.infra.store import Conversation, Message
from bot.model.reports import Figures, Metrics


def _day(column):
    return func.date(column)


def daily(db: Session, days: int, today: date | None = None) -> list[dict]:
    """One row per day for the last `days` days (oldest first), days without traffic included."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), UTC)
    rows = {str(d): {"conversations": n, "csat": csat, "rated": rated}
            for d, n, csat, rated in db.execute(
                select(_day(Conversation.created_at), func.count(), func.avg(Conversation.csat),
                       func.count(Conversation.csat))
                .where(Conversation.created_at >= since).group_by(_day(Conversation.created_at)))}
    is_bot = Message.role == "bot"
    turns = {str(d): (bot, handoffs, fallbacks, users, confidence)
             for d, bot, handoffs, fallbacks, users, confidence in db.execute(
                 select(_day(Message.created_at),
                        func.sum(cast(is_bot, Integer)),
                        func.sum(case((Message.decision == "handoff", 1), else_=0)),
                        func.sum(case((Message.decision == "fallback", 1), else_=0)),
                        func.sum(case((Message.role == "user", 1), else_=0)),
                        func.avg(case((Message.role == "user", Message.confidence), else_=None)))
                 .where(Message.created_at >= since).group_by(_day(Message.created_at)))}
    result = []
    for offset in range(days):
        day = str(first + timedelta(days=offset))
        conv = rows.get(day, {"conversations": 0, "csat": None, "rated": 0})
        bot, handoffs, fallbacks, users, confidence = turns.get(day, (0, 0, 0, 0, None))
        result.append({
            "day": day,
            "conversations": conv["conversations"],
            "visitor_messages": int(users or 0),
            "bot_messages": int(bot or 0),
            "handoffs": int(handoffs or 0),
            "handoff_rate": (handoffs or 0) / conv["conversations"] if conv["conversations"] else None,
            "fallback_rate": (fallbacks or 0) / bot if bot else None,
            "average_confidence": float(confidence) if confidence is not None else None,
            "csat": float(conv["csat"]) if conv["csat"] is not None else None,
            "rated": conv["rated"],
        })
    return result


def _side(figures: Figures | None) -> dict:
    if figures is None:
        return {"model": None, "accuracy": None, "params": None, "disk_mb": None, "latency_ms_p50": None}
    return {"model": figures.model, "accuracy": figures.accuracy, "params": figures.params,
            "disk_mb": figures.disk_mb, "latency_ms_p50": figures.latency_ms.p50}


def model_summary(version: str, backend: str, metrics: Metrics | None) -> dict:
    """What the dashboard shows of the model: version, teacher vs student accuracy, speed-up, sizes (None
    where the version was published without metrics.json)."""
    if metrics is None:
        return {"version": version, "backend": backend, "teacher": _side(None), "student": _side(None),
                "speedup_same_runtime": None, "speedup_p50": None, "test_messages": None}
    return {
        "version": version, "backend": backend,
        "teacher": _side(metrics.teacher), "student": _side(metrics.student),
        "speedup_same_runtime": metrics.speedup_same_runtime,
        "speedup_p50": metrics.speedup_p50,
        "test_messages": metrics.test_set.messages,
    }
