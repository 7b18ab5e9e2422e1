"""Whatever the door lets in, the feed renders: property tests over every accepted value.

The door (crm_platform.values, crm_contracts.patterns) admits text without control
characters and times from 2000-01-01 to ten years ahead; anything in that space must render
as a feed that parses back, so no consultant's calendar can be taken down by one entry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calendar_sync.domain import CalendarEntry
from calendar_sync.feed import FeedEntry, uid_for
from calendar_sync.ics import render_feed
from crm_contracts.patterns import is_text
from crm_platform.values import EARLIEST, latest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

texts = st.text(max_size=300).filter(is_text)
instants = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None),
    max_value=latest(datetime(2026, 12, 6, tzinfo=UTC)).replace(tzinfo=None),
    timezones=st.just(UTC),
)


@st.composite
def entries(draw: st.DrawFn) -> FeedEntry:
    start = draw(instants)
    entry = CalendarEntry(
        subject=draw(texts),
        body=draw(texts),
        location=draw(texts),
        categories=tuple(draw(st.lists(texts.filter(bool), max_size=3))),
        start=start,
        end=start + timedelta(minutes=draw(st.integers(1, 600))),
        reminder_minutes=draw(st.none() | st.integers(0, 1440)),
        cancelled=draw(st.booleans()),
    )
    activity = str(draw(st.uuids()))
    return FeedEntry(
        mailbox="anna@example.dk",
        activity_id=activity,
        uid=uid_for(activity),
        sequence=draw(st.integers(0, 10_000)),
        entry=entry,
        change_key="k",
        updated_at=draw(instants),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(entries(), max_size=5))
def test_every_accepted_entry_renders_and_parses_back(items: list[FeedEntry]) -> None:
    def refuse(item: FeedEntry, error: Exception) -> None:
        raise AssertionError(f"{item.uid} did not render: {error!r}")

    feed = Calendar.from_ical(render_feed("anna@example.dk", items, refuse))

    assert {str(e["uid"]) for e in feed.walk("VEVENT")} == {i.uid for i in items}
