"""The iCalendar feed: valid RFC 5545 that the icalendar library reads back as written."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calendar_sync.domain import CalendarEntry
from calendar_sync.feed import FeedEntry, uid_for
from calendar_sync.ics import render_feed
from icalendar import Calendar

CPH = ZoneInfo("Europe/Copenhagen")
STAMP = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def item(activity_id: str, start: datetime, *, sequence: int = 0, **changes: object) -> FeedEntry:
    entry = CalendarEntry(
        subject="Statusmøde: Kampagner – Bageriet Ørsted",
        body="Dagsorden:\nKampagner, budget; næste skridt",
        location="Hos kunden",
        categories=("CRM", "Statusmøde"),
        start=start,
        end=start + timedelta(hours=1),
    )
    entry = replace(entry, **changes)
    return FeedEntry(
        "anna@example.dk", activity_id, uid_for(activity_id), sequence, entry, "k", STAMP
    )


def categories(event: Any) -> list[str]:
    return [str(c) for c in event["categories"].cats]


def parsed(*items: FeedEntry) -> Calendar:
    return Calendar.from_ical(render_feed("anna@example.dk", items))


def test_the_feed_is_a_publishable_calendar_with_the_copenhagen_zone() -> None:
    raw = render_feed("anna@example.dk", [item("a1", datetime(2026, 3, 2, 9, 0, tzinfo=UTC))])
    assert raw.startswith(b"BEGIN:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))  # folded as RFC 5545 asks
    calendar = Calendar.from_ical(raw)
    assert (str(calendar["version"]), str(calendar["method"])) == ("2.0", "PUBLISH")
    zone = calendar.walk("VTIMEZONE")[0]
    assert str(zone["tzid"]) == "Europe/Copenhagen"
    rules: dict[str | None, Any] = {c.name: c["rrule"] for c in zone.subcomponents}
    assert rules["DAYLIGHT"]["BYMONTH"] == [3]
    assert rules["STANDARD"]["BYMONTH"] == [10]


def test_ten_oclock_stays_ten_on_both_sides_of_daylight_saving() -> None:
    spring = datetime(2026, 3, 29, 10, 0, tzinfo=CPH)
    autumn = datetime(2026, 10, 25, 10, 0, tzinfo=CPH)
    calendar = parsed(
        item("spring", spring.astimezone(UTC)), item("autumn", autumn.astimezone(UTC))
    )
    starts = {str(e["uid"]): e.decoded("dtstart") for e in calendar.walk("VEVENT")}
    assert starts[uid_for("spring")].astimezone(UTC) == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    assert starts[uid_for("autumn")].astimezone(UTC) == datetime(2026, 10, 25, 9, 0, tzinfo=UTC)
    assert {s.hour for s in starts.values()} == {10}


def test_an_event_carries_uid_sequence_summary_categories_and_a_reminder() -> None:
    event = parsed(item("a1", datetime(2026, 3, 2, 9, 0, tzinfo=UTC), sequence=4)).walk("VEVENT")[0]
    assert str(event["uid"]) == "a1@calendar-sync.crm"
    assert int(str(event["sequence"])) == 4
    assert str(event["summary"]) == "Statusmøde: Kampagner – Bageriet Ørsted"
    assert str(event["description"]) == "Dagsorden:\nKampagner, budget; næste skridt"
    assert categories(event) == ["CRM", "Statusmøde"]
    assert (str(event["status"]), str(event["transp"])) == ("CONFIRMED", "OPAQUE")
    assert event["dtstart"].params["TZID"] == "Europe/Copenhagen"
    assert event.decoded("dtstamp") == STAMP
    alarm = event.walk("VALARM")[0]
    assert alarm.decoded("trigger") == timedelta(minutes=-15)


def test_a_cancelled_entry_in_mark_mode_is_cancelled_and_free() -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    event = parsed(
        item("a1", start, cancelled=True, show_as="free", subject="Aflyst: Statusmøde")
    ).walk("VEVENT")[0]
    assert (str(event["status"]), str(event["transp"])) == ("CANCELLED", "TRANSPARENT")
    assert event.walk("VALARM") == []
