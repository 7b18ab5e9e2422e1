"""Just enough RFC 5545 to read the VEVENTs of a feed (no dependency for a demo's needs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class VEvent:
    uid: str
    summary: str
    start: datetime | None
    end: datetime | None
    status: str
    categories: str


def unfold(text: str) -> list[str]:
    """Content lines with their folded continuations (a leading space or tab) joined."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw:
            lines.append(raw)
    return lines


def unescape(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append("\n" if nxt in ("n", "N") else nxt)
        else:
            out.append(ch)
    return "".join(out)


def parse_time(params: dict[str, str], value: str) -> datetime | None:
    try:
        if value.endswith("Z"):
            return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        moment = datetime.strptime(value, "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    zone = params.get("TZID")
    return moment.replace(tzinfo=ZoneInfo(zone)) if zone else moment


def vevents(text: str) -> list[VEvent]:
    events: list[VEvent] = []
    current: dict[str, tuple[dict[str, str], str]] | None = None
    depth = 0  # components nested in a VEVENT (VALARM) have properties of their own
    for line in unfold(text):
        if line == "BEGIN:VEVENT":
            current, depth = {}, 0
            continue
        if current is None:
            continue
        if line.startswith("BEGIN:"):
            depth += 1
        elif line.startswith("END:") and depth:
            depth -= 1
        elif line == "END:VEVENT":
            events.append(_event(current))
            current = None
        elif depth == 0 and ":" in line:
            head, value = line.split(":", 1)
            name, *param_parts = head.split(";")
            params = dict(p.split("=", 1) for p in param_parts if "=" in p)
            current.setdefault(name.upper(), (params, value))
    return events


def _event(props: dict[str, tuple[dict[str, str], str]]) -> VEvent:
    def text(name: str) -> str:
        return unescape(props[name][1]) if name in props else ""

    def moment(name: str) -> datetime | None:
        return parse_time(*props[name]) if name in props else None

    return VEvent(
        uid=text("UID"),
        summary=text("SUMMARY"),
        start=moment("DTSTART"),
        end=moment("DTEND"),
        status=text("STATUS"),
        categories=text("CATEGORIES"),
    )
