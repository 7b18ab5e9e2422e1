"""The values an API takes at its door, checked the same way by every service.

Text, ids and mailboxes come from the contracts (`crm_contracts.primitives`), so nothing
is accepted that could not be published. Times are checked here because their bounds move
with the clock: between 2000-01-01 and ten years ahead, written as ISO 8601 with an offset.
Nothing further out is needed by a sales force, and with these bounds no later arithmetic
(a move keeping its duration, a feed's end of day) can leave `datetime`'s range.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from crm_contracts.patterns import ID_PATTERN, MAILBOX_PATTERN
from crm_contracts.primitives import ID_MAX, MAILBOX_MAX
from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "EARLIEST",
    "HORIZON",
    "MONEY_AS_STRING",
    "OUT_OF_RANGE",
    "CustomerIdPath",
    "CustomerIdQuery",
    "Day",
    "Instant",
    "InstantQuery",
    "MailboxPath",
    "MoneyIn",
    "OwnerQuery",
    "UntilQuery",
    "UtcInstant",
    "check_day",
    "check_instant",
    "latest",
    "utc_text",
]

COPENHAGEN: Final = ZoneInfo("Europe/Copenhagen")
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
HORIZON: Final = timedelta(days=3653)  # ten years, leap days included
_ISO_INSTANT: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})$"
)


def latest(now: datetime | None = None) -> datetime:
    """The last instant an API accepts: ten years after `now`."""
    return (now or datetime.now(UTC)) + HORIZON


OUT_OF_RANGE: Final = "time_out_of_range"
"""The error type (and, alone, the problem code) of a time outside the window: a rule that
moves with the clock, which no OpenAPI document can state."""


def check_instant(value: datetime, now: datetime | None = None) -> datetime:
    if value < EARLIEST:
        raise PydanticCustomError(OUT_OF_RANGE, "must be on or after 2000-01-01")
    if value > latest(now):
        raise PydanticCustomError(
            OUT_OF_RANGE,
            "must be at most ten years ahead (before {latest})",
            {"latest": f"{latest(now):%Y-%m-%d}"},
        )
    return value


def _iso_text(value: object) -> object:
    # pydantic reads a number as seconds since 1970 (`?to=0.5`); nobody means that here.
    if isinstance(value, str) and not _ISO_INSTANT.match(value.strip()):
        raise ValueError("must be an ISO 8601 date-time with an offset, e.g. 2026-03-02T09:00Z")
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 date-time string, not a number")
    return value


def check_day(value: date, now: datetime | None = None) -> date:
    if not EARLIEST.date() <= value <= latest(now).date():
        raise PydanticCustomError(
            OUT_OF_RANGE,
            "must be between 2000-01-01 and {latest}",
            {"latest": f"{latest(now):%Y-%m-%d}"},
        )
    return value


def _check_day(value: date) -> date:
    return check_day(value)


def _check_instant(value: datetime) -> datetime:
    return check_instant(value)


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(_check_instant),
    Field(description="ISO 8601 with an offset, from 2000-01-01 to ten years ahead."),
]
"""A point in time as an API takes it (body field or query parameter)."""

Day = Annotated[
    date,
    AfterValidator(_check_day),
    Field(description="A calendar day (YYYY-MM-DD), from 2000-01-01 to ten years ahead."),
]

MONEY_PATTERN: Final = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"


MONEY_AS_STRING: Final = "money_as_string"
"""The error type (and, alone, the problem code) of an amount sent as a JSON number."""


def _money_text(value: object) -> object:
    # A JSON number is a float to most clients: the amount may be inexact before we see it.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError(
            MONEY_AS_STRING,
            'an amount is sent as a decimal string, e.g. "390000.00", never as a JSON number',
        )
    if isinstance(value, str) and re.match(MONEY_PATTERN, value):
        return value
    raise ValueError('must be an amount in DKK written as a string, e.g. "390000.00"')


MoneyIn = Annotated[
    Decimal,
    BeforeValidator(_money_text),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": MONEY_PATTERN,
            "description": 'An exact amount in DKK, at most two decimals, e.g. "390000.00".',
        },
        mode="validation",
    ),
]
"""An amount in DKK as an API takes it: a decimal string, never a float."""

CustomerIdPath = Annotated[str, Path(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]
"""A customer id in a URL path: the contracts' id, so anything else is a 422, never a 500."""

MailboxPath = Annotated[str, Path(min_length=3, max_length=MAILBOX_MAX, pattern=MAILBOX_PATTERN)]

OwnerQuery = Annotated[
    str | None,
    Query(min_length=3, max_length=MAILBOX_MAX, pattern=MAILBOX_PATTERN, description="E-mail"),
]
"""Filter by consultant: an e-mail address, as owners are."""

CustomerIdQuery = Annotated[str | None, Query(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]

_DAY_ONLY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day_starts(value: object, *, next_day: bool) -> object:
    """A bare date in a query means that day in Copenhagen: its start (`from`), or the start
    of the day after (`to`, which is exclusive), so `?from=D&to=D` is the whole day D."""
    if isinstance(value, str) and _DAY_ONLY.match(value.strip()):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError as bad:
            raise ValueError(f"{value!r} is not a calendar day") from bad
        check_day(day)
        if next_day:
            day = day + timedelta(days=1) if day < date.max else day
        return datetime.combine(day, time(0), COPENHAGEN).astimezone(UTC)
    return value


def _day_start(value: object) -> object:
    return _day_starts(value, next_day=False)


def _day_end(value: object) -> object:
    return _day_starts(value, next_day=True)


_QUERY_TIME: Final = (
    "ISO 8601 with an offset, or a day (YYYY-MM-DD) meaning that day in Europe/Copenhagen"
)
_DAY_OR_INSTANT = Annotated[
    Instant,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
            ]
        }
    ),
]
InstantQuery = Annotated[
    _DAY_OR_INSTANT | None,
    BeforeValidator(_day_start),
    Query(description=_QUERY_TIME + " (from its start)."),
]
"""A lower bound in a query: a time, or a Copenhagen day from its start."""
UntilQuery = Annotated[
    _DAY_OR_INSTANT | None,
    BeforeValidator(_day_end),
    Query(description=_QUERY_TIME + " (to its end; the bound is exclusive)."),
]
"""An exclusive upper bound in a query: a time, or a Copenhagen day to its end."""


def utc_text(value: datetime) -> str:
    """How every time leaves an API: UTC, with `Z`."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcInstant = Annotated[
    AwareDatetime,
    PlainSerializer(utc_text, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "description": "UTC, ending in `Z`."},
        mode="serialization",
    ),
]
"""A point in time as an API answers it: always UTC with `Z`, whatever it was given in."""
