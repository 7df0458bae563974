"""Office hours (bot/infra/office_hours.py): read as people write them, asked in their time zone, refused with a
message that names the part that is wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.infra.office_hours import OfficeHours, OfficeHoursError
from bot.infra.settings import Settings

MONDAY_NOON_UTC = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 13:00 in Berlin


@pytest.mark.parametrize(("hours", "zone", "moment", "open_"), [
    ("Mon-Fri 09:00-18:00", "UTC", MONDAY_NOON_UTC, True),
    ("Mon-Fri 09:00-12:00", "UTC", MONDAY_NOON_UTC, False),  # the end is not inside
    ("Mon-Fri 09:00-12:30", "Europe/Berlin", MONDAY_NOON_UTC, False),
    ("Sat 10:00-14:00; Mon 13:00-24:00", "Europe/Berlin", MONDAY_NOON_UTC, True),
    ("Fri-Mon 08:00-20:00", "UTC", MONDAY_NOON_UTC, True),  # a range across the week's end
    ("Tue-Sun 00:00-24:00", "UTC", MONDAY_NOON_UTC, False),
])
def test_open_or_closed(hours, zone, moment, open_):
    office = OfficeHours.parse(hours, zone)
    assert office is not None and office.open_at(moment) is open_


def test_empty_means_always_open():
    assert OfficeHours.parse("  ") is None


@pytest.mark.parametrize(("hours", "zone", "message"), [
    ("weekdays 9-5", "UTC", "'weekdays 9-5': write days and hours like"),
    ("Mon-Fry 09:00-18:00", "UTC", "days are Mon, Tue"),
    ("Mon 18:00-09:00", "UTC", "the hours end before they start"),
    ("Mon 09:00-25:00", "UTC", "25:00 is not a time of day"),
    ("Mon 09:00-18:00", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
])
def test_a_mistake_is_named(hours, zone, message):
    with pytest.raises(OfficeHoursError, match=message):
        OfficeHours.parse(hours, zone)
    with pytest.raises(ValueError, match="office_hours"):
        Settings(office_hours=hours, office_timezone=zone)
