"""The demo shop's orders: loaded from a JSON file into the orders table when it is empty."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.infra.store import Order


def _days_from_now(days: float | None) -> datetime | None:
    return None if days is None else datetime.now(UTC) + timedelta(days=days)


def seed_orders(sessions: sessionmaker, path: Path) -> int:
    """Insert the file's orders unless the table already has some; returns how many were added. Dates are
    given relative to today (`placed_days_ago`, `expected_in_days`, `cancelled_days_ago`) so the demo
    always reads as current."""
    rows = json.loads(Path(path).read_text())
    try:
        return _insert(sessions, rows)
    except IntegrityError:  # another replica starting at the same moment seeded them first
        return 0


def _insert(sessions: sessionmaker, rows: list[dict]) -> int:
    with sessions.begin() as db:
        if db.scalar(select(func.count()).select_from(Order)):
            return 0
        for row in rows:
            db.add(Order(id=row["id"], email=row["email"], customer_id=row.get("customer_id"), status=row["status"],
                         items=row["items"], total=row["total"], carrier=row.get("carrier"),
                         tracking_code=row.get("tracking_code"),
                         placed_at=_days_from_now(-row["placed_days_ago"]),
                         expected_at=_days_from_now(row.get("expected_in_days")),
                         cancelled_at=_days_from_now(-row["cancelled_days_ago"]) if "cancelled_days_ago" in row
                         else None))
        return len(rows)
