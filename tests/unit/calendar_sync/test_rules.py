"""The projection rules: how each activity event changes what the calendar shows."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from calendar_sync.calendar import Remote
from calendar_sync.domain import (
    ActivityView,
    CancelMode,
    Lifecycle,
    fold,
    render,
    subject_line,
)
from crm_contracts.activity import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityEdited,
    ActivityMoved,
    ActivityPlanned,
    ActivityReassigned,
    ActivityRegistered,
    ActivityRetyped,
)
from crm_contracts.enums import ActivityType, Channel, MoveReason

ID = uuid.UUID("3f0e8a52-7b7c-4d43-9a43-0d6f4c7f2a11")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
COMMON = {"activity_id": ID, "customer_id": "cust-1", "actor": "anna@example.dk"}


def at(version: int) -> dict[str, object]:
    return {**COMMON, "version": version, "occurred_at": START - timedelta(days=1)}


def planned() -> ActivityPlanned:
    return ActivityPlanned(
        **at(1),  # type: ignore[arg-type]
        owner="Anna@Example.dk",
        type=ActivityType.DISCOVERY_MEETING,
        channel=Channel.PHYSICAL,
        subject="Årsplan 2027",
        starts_at=START,
        ends_at=END,
        agenda="Forretning, mål og planer",
    )


def view() -> ActivityView:
    folded = fold(None, planned())
    assert folded is not None
    return folded


def test_a_plan_becomes_a_view_with_a_lower_cased_owner() -> None:
    shown = view()
    assert (shown.owner, shown.version, shown.lifecycle) == ("anna@example.dk", 1, "planned")
    assert (shown.starts_at, shown.ends_at, shown.agenda) == (
        START,
        END,
        "Forretning, mål og planer",
    )


def test_a_move_changes_the_times_and_keeps_the_agenda() -> None:
    later = START + timedelta(days=2)
    moved = ActivityMoved(
        **at(2),  # type: ignore[arg-type]
        owner="anna@example.dk",
        type=ActivityType.DISCOVERY_MEETING,
        channel=Channel.PHYSICAL,
        subject="Årsplan 2027",
        from_starts_at=START,
        from_ends_at=END,
        to_starts_at=later,
        to_ends_at=later + timedelta(minutes=30),
        reason=MoveReason.NO_ANSWER,
    )
    after = fold(view(), moved)
    assert after is not None
    assert (after.starts_at, after.ends_at, after.version) == (
        later,
        later + timedelta(minutes=30),
        2,
    )
    assert after.agenda == "Forretning, mål og planer"
    # Fat events also stand on their own when the plan was never seen.
    alone = fold(None, moved)
    assert alone is not None
    assert (alone.starts_at, alone.agenda, alone.lifecycle) == (later, None, Lifecycle.PLANNED)


def test_an_edit_changes_subject_and_agenda_in_the_calendar() -> None:
    edited = ActivityEdited(
        **at(2),  # type: ignore[arg-type]
        owner="anna@example.dk",
        type=ActivityType.DISCOVERY_MEETING,
        channel=Channel.PHYSICAL,
        subject="Årsplan 2027 og webshop",
        agenda=None,
        starts_at=START,
        ends_at=END,
    )
    after = fold(view(), edited)
    assert after is not None
    assert (after.subject, after.agenda, after.version) == ("Årsplan 2027 og webshop", None, 2)
    entry = render(after, "Bager Hansen", CancelMode.REMOVE)
    assert entry is not None
    assert (entry.subject, entry.body) == (
        "Afdækningsmøde: Årsplan 2027 og webshop – Bager Hansen",
        "",
    )


def test_retype_and_reassign() -> None:
    retyped = ActivityRetyped(
        **at(2),  # type: ignore[arg-type]
        owner="anna@example.dk",
        subject="Årsplan 2027",
        starts_at=START,
        ends_at=END,
        from_type=ActivityType.DISCOVERY_MEETING,
        to_type=ActivityType.CONTACT,
        from_channel=Channel.PHYSICAL,
        to_channel=Channel.PHONE,
    )
    after = fold(view(), retyped)
    assert after is not None
    assert (after.type, after.channel) == (ActivityType.CONTACT, Channel.PHONE)
    reassigned = ActivityReassigned(
        **at(3),  # type: ignore[arg-type]
        from_owner="anna@example.dk",
        to_owner="BO@example.dk",
        type=ActivityType.CONTACT,
        channel=Channel.PHONE,
        subject="Årsplan 2027",
        starts_at=START,
        ends_at=END,
    )
    moved_on = fold(after, reassigned)
    assert moved_on is not None
    assert (moved_on.owner, moved_on.version) == ("bo@example.dk", 3)


def test_completion_and_cancellation_need_the_plan() -> None:
    completed = ActivityCompleted(
        **at(2),  # type: ignore[arg-type]
        owner="anna@example.dk",
        type=ActivityType.DISCOVERY_MEETING,
        channel=Channel.PHYSICAL,
        note="Godt møde",
        next_step="Oplæg",
        completed_at=END,
    )
    cancelled = ActivityCancelled(**at(2), owner="anna@example.dk", reason="Syg")  # type: ignore[arg-type]
    done = fold(view(), completed)
    assert done is not None
    assert done.lifecycle is Lifecycle.COMPLETED
    gone = fold(view(), cancelled)
    assert gone is not None
    assert gone.lifecycle is Lifecycle.CANCELLED
    assert fold(None, completed) is None
    assert fold(None, cancelled) is None


def test_a_registration_is_never_in_a_calendar() -> None:
    registered = ActivityRegistered(
        **at(1),  # type: ignore[arg-type]
        owner="anna@example.dk",
        type=ActivityType.UNANNOUNCED_VISIT,
        channel=Channel.PHYSICAL,
        held_at=START,
        note="Afleverede salgsbrev",
    )
    assert fold(None, registered) is None


def test_the_subject_shows_label_subject_and_customer() -> None:
    assert (
        subject_line(view(), "Bageriet Ørsted") == "Afdækningsmøde: Årsplan 2027 – Bageriet Ørsted"
    )
    assert subject_line(view(), None) == "Afdækningsmøde: Årsplan 2027 – cust-1"
    long = subject_line(replace(view(), subject="x" * 200), "y" * 200)
    assert len(long) == 255
    assert long.endswith("…")


@pytest.mark.parametrize(
    ("channel", "location"),
    [
        (Channel.PHYSICAL, "Hos kunden"),
        (Channel.PHONE, "Telefon"),
        (Channel.VIDEO, "Online (Teams)"),
        (Channel.EMAIL, "E-mail"),
    ],
)
def test_the_location_follows_the_channel(channel: Channel, location: str) -> None:
    entry = render(replace(view(), channel=channel), None, CancelMode.REMOVE)
    assert entry is not None
    assert entry.location == location


def test_rendering_by_lifecycle() -> None:
    entry = render(view(), "Bageriet Ørsted", CancelMode.REMOVE)
    assert entry is not None
    assert entry.categories == ("CRM", "Afdækningsmøde")
    assert (entry.reminder_minutes, entry.show_as, entry.body) == (
        15,
        "busy",
        "Forretning, mål og planer",
    )
    done = render(replace(view(), lifecycle=Lifecycle.COMPLETED), None, CancelMode.REMOVE)
    assert done is not None
    assert done.categories == ("CRM", "Afdækningsmøde", "Udført")
    cancelled = replace(view(), lifecycle=Lifecycle.CANCELLED)
    assert render(cancelled, None, CancelMode.REMOVE) is None
    marked = render(cancelled, "Bageriet Ørsted", CancelMode.MARK)
    assert marked is not None
    assert marked.subject == "Aflyst: Afdækningsmøde: Årsplan 2027 – Bageriet Ørsted"
    assert marked.categories == ("CRM", "Afdækningsmøde", "Aflyst")
    assert (marked.show_as, marked.cancelled) == ("free", True)


def test_drift_ignores_category_order_and_sub_second_times() -> None:
    entry = render(replace(view(), starts_at=START.replace(microsecond=500)), None, CancelMode.MARK)
    assert entry is not None
    remote = Remote(
        event_id="e",
        change_key="k",
        subject=entry.subject,
        start=START,
        end=END,
        location="Hos kunden",
        categories=("Afdækningsmøde", "CRM"),
        show_as="Busy",
    )
    assert remote.drift(entry) == []
    assert replace(remote, subject="Mit eget").drift(entry) == ["subject"]
    assert replace(remote, start=START + timedelta(hours=1)).drift(entry) == ["start"]
