"""Times as the consultant sees them: Copenhagen wall clock, working days, Danish weekdays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

COPENHAGEN: Final = ZoneInfo("Europe/Copenhagen")
WEEKDAYS: Final = ("man", "tir", "ons", "tor", "fre", "lør", "søn")


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return now().astimezone(COPENHAGEN).date()


def workday(after: date, days: int) -> date:
    """The `days`-th working day after `after` (meetings are not booked for weekends)."""
    day, left = after, days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def slot(day: date, hour: int, minutes: int = 60) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(hour), tzinfo=COPENHAGEN)
    return start, start + timedelta(minutes=minutes)


def shown(moment: datetime | str) -> str:
    """`tir 01.12 10:00` in Copenhagen."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = moment.astimezone(COPENHAGEN)
    return f"{WEEKDAYS[local.weekday()]} {local:%d.%m %H:%M}"


def span(starts: str, ends: str) -> str:
    end = datetime.fromisoformat(ends).astimezone(COPENHAGEN)
    return f"{shown(starts)}–{end:%H:%M}"
