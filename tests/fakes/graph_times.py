"""Time zones and date-times as Microsoft Graph reads and writes them (the fake's side).

Graph's `dateTimeTimeZone` is a wall-clock `dateTime` without offset plus a `timeZone` name. It
accepts Windows zone names and a fixed list of IANA names (the dateTimeTimeZone resource page);
`Europe/Copenhagen` is *not* on that list, `Europe/Paris` and `Europe/Berlin` are. An unknown
name is a 400 `TimeZoneNotSupportedException`. Responses carry UTC with seven fractional digits
(`2026-03-29T08:00:00.0000000`) unless `Prefer: outlook.timezone="…"` asks for another zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from tests.fakes.graph_errors import GraphFault

# The Windows zones the fake understands, with the IANA zone whose rules they follow. Romance
# Standard Time is Copenhagen/Brussels/Madrid/Paris: since 1980 they share Copenhagen's rules.
WINDOWS_ZONES: dict[str, str] = {
    "UTC": "UTC",
    "Romance Standard Time": "Europe/Copenhagen",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "FLE Standard Time": "Europe/Helsinki",
    "Eastern Standard Time": "America/New_York",
    "Pacific Standard Time": "America/Los_Angeles",
    "Tokyo Standard Time": "Asia/Tokyo",
}

# A part of the IANA list that Graph documents as accepted (Europe/Copenhagen is absent there).
IANA_ACCEPTED: frozenset[str] = frozenset(
    {
        "Etc/GMT",
        "Europe/London",
        "Europe/Berlin",
        "Europe/Budapest",
        "Europe/Paris",
        "Europe/Warsaw",
        "Europe/Bucharest",
        "Europe/Istanbul",
        "Europe/Moscow",
        "Atlantic/Reykjavik",
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Los_Angeles",
        "Asia/Tokyo",
        "Asia/Singapore",
        "Australia/Sydney",
    }
)

_DATE_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})?$"
)


def zone_named(name: object) -> tzinfo:
    """The zone Graph would use for `name`, or the 400 Graph answers for a zone it lacks."""
    if isinstance(name, str):
        if name in WINDOWS_ZONES:
            return ZoneInfo(WINDOWS_ZONES[name])
        if name in IANA_ACCEPTED:
            return ZoneInfo(name)
    raise GraphFault(
        400,
        "TimeZoneNotSupportedException",
        "A valid TimeZone value must be specified. "
        f"The following TimeZone value is not supported: '{name}'.",
    )


def parse_date_time_time_zone(value: object, field: str) -> tuple[datetime, str]:
    """A request's `{dateTime, timeZone}` as an aware UTC instant, plus the zone name given."""
    if not isinstance(value, dict):
        raise GraphFault(400, "ErrorInvalidRequest", f"The property '{field}' must be an object.")
    zone_name = value.get("timeZone")
    zone = zone_named(zone_name)
    raw = value.get("dateTime")
    match = _DATE_TIME.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise GraphFault(
            400,
            "BadRequest",
            f"Cannot convert the literal '{raw}' to the expected type 'Edm.String'.",
        )
    wall, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    parsed = datetime.fromisoformat(wall).replace(microsecond=micros)
    if offset is not None:
        # An explicit offset wins over the zone name (it names an instant, not a wall time).
        aware = datetime.fromisoformat(wall + ("+00:00" if offset == "Z" else offset))
        return aware.replace(microsecond=micros).astimezone(UTC), str(zone_name)
    return parsed.replace(tzinfo=zone).astimezone(UTC), str(zone_name)


def format_graph_date_time(instant: datetime, zone_name: str) -> dict[str, str]:
    """`{dateTime, timeZone}` the way Graph answers: wall time in `zone_name`, 7 digits."""
    local = instant.astimezone(zone_named(zone_name))
    wall = local.replace(tzinfo=None).isoformat(timespec="microseconds") + "0"
    return {"dateTime": wall, "timeZone": zone_name}


def format_timestamp(instant: datetime) -> str:
    """A DateTimeOffset property (createdDateTime, …): UTC with a `Z`."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_query_instant(raw: str | None, name: str) -> datetime:
    """`startDateTime`/`endDateTime` query parameters: ISO 8601; no offset means UTC."""
    try:
        parsed = datetime.fromisoformat((raw or "").replace("Z", "+00:00"))
    except ValueError:
        raise GraphFault(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            f"StartDateTime and EndDateTime ({name} is missing or malformed).",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
