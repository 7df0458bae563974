"""When people are there to take a hand-off. Outside office hours the bot does not promise a person "shortly":
it says when the team is back, asks for an e-mail address, and leaves the conversation in the inbox as an
offline message.

Written as `Mon-Fri 09:00-18:00; Sat 10:00-14:00` (days as a range or one day, then a time range, in
DISTILBOT_OFFICE_TIMEZONE); empty means always open. The dialogue (bot.conversation.dialogue) asks it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

OFFLINE_SLOT, CONTACT_EMAIL_SLOT = "offline", "contact_email"
"""The conversation slots of an offline message: the hand-off came outside office hours; the address the visitor
left."""
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(?P<first>[a-z]{3})(?:\s*-\s*(?P<last>[a-z]{3}))?\s+(?P<start>\d{1,2}:\d{2})\s*-\s*"
                   r"(?P<end>\d{1,2}:\d{2})\s*$", re.IGNORECASE)


class OfficeHoursError(ValueError):
    pass


@dataclass(frozen=True)
class Span:
    days: frozenset[int]
    start: time
    end: time


def _time(value: str, span: str) -> time:
    hours, minutes = map(int, value.split(":"))
    if hours == 24 and minutes == 0:
        return time.max
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise OfficeHoursError(f"{span!r}: {value} is not a time of day")
    return time(hours, minutes)


@dataclass(frozen=True)
class OfficeHours:
    spans: tuple[Span, ...]
    zone: ZoneInfo
    text: str
    """As written, to tell visitors."""

    @classmethod
    def parse(cls, text: str, zone: str = "UTC") -> OfficeHours | None:
        """None for "" (always open); OfficeHoursError naming the part that is wrong."""
        if not text.strip():
            return None
        spans = []
        for part in text.split(";"):
            match = _SPAN.match(part)
            if match is None:
                raise OfficeHoursError(f"{part.strip()!r}: write days and hours like 'Mon-Fri 09:00-18:00'")
            first, last = match["first"].lower(), (match["last"] or match["first"]).lower()
            if first not in DAYS or last not in DAYS:
                raise OfficeHoursError(f"{part.strip()!r}: days are {', '.join(d.title() for d in DAYS)}")
            a, b = DAYS.index(first), DAYS.index(last)
            days = frozenset(range(a, b + 1)) if a <= b else frozenset([*range(a, 7), *range(0, b + 1)])
            start, end = _time(match["start"], part.strip()), _time(match["end"], part.strip())
            if end <= start:
                raise OfficeHoursError(f"{part.strip()!r}: the hours end before they start")
            spans.append(Span(days, start, end))
        try:
            tz = ZoneInfo(zone)
        except (KeyError, ValueError) as exc:
            raise OfficeHoursError(f"unknown time zone {zone!r}") from exc
        return cls(tuple(spans), tz, f"{text.strip()} ({zone})")

    def open_at(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        clock = local.time()
        return any(local.weekday() in span.days and span.start <= clock < span.end for span in self.spans)
