"""The read model's fold: Activity events → table rows, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from activity.domain import Activity, CompletionRequest, PlanRequest, RegistrationRequest
from activity.projections import (
    ACTIVITY_TOPICS,
    FOLLOWED_TOPICS,
    UnknownActivity,
    fold,
    fold_batch,
)
from activity.read_queries import (
    ACTIVITY_COLUMNS,
    MOVE_COLUMNS,
    TIMELINE_COLUMNS,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
)
from crm_contracts.enums import ActivityType, Channel, MoveReason
from crm_contracts.patterns import is_text
from crm_platform.errors import DomainError
from crm_platform.sqlview import iso
from crm_platform.values import latest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ANNA, BO, MIA = "anna@example.dk", "bo@example.dk", "mia@example.dk"
NOTE = "Kunden vil have tilbud på 4 ugers print før åbningen"


def planned(
    starts_at: datetime = NOW + timedelta(days=1, hours=1),
    *,
    subject: str = "Forårskampagne",
    minutes: int = 30,
    agenda: str | None = None,
) -> Activity:
    request = PlanRequest(
        "K1",
        ANNA,
        ActivityType.CONTACT,
        Channel.PHONE,
        subject,
        starts_at,
        starts_at + timedelta(minutes=minutes),
        agenda,
    )
    return Activity.plan(uuid.uuid4(), request, actor=ANNA, now=NOW)


def folded(events: list[Any]) -> tuple[dict[str, Any], list[tuple[Any, ...]], list[Any]]:
    rows: dict[uuid.UUID, dict[str, Any]] = {}
    timeline, moves = fold_batch(rows, list(enumerate(events, start=100)))
    (row,) = rows.values()
    return row, timeline, moves


def test_a_planned_activity_becomes_a_row_and_a_timeline_entry() -> None:
    activity = planned()
    row, timeline, moves = folded(activity.collect_events())

    assert list(row) == list(ACTIVITY_COLUMNS)
    assert row == {
        "activity_id": str(activity.id),
        "customer_id": "K1",
        "owner": ANNA,
        "type": "contact",
        "channel": "phone",
        "subject": "Forårskampagne",
        "status": "planned",
        "registered": False,
        "starts_at": "2026-03-03T09:00:00.000000Z",
        "ends_at": "2026-03-03T09:30:00.000000Z",
        "move_count": 0,
        "created_at": "2026-03-02T08:00:00.000000Z",
        "closed_at": None,
        "version": 1,
        "updated_at": "2026-03-02T08:00:00.000000Z",
    }
    assert timeline == [
        (
            "K1",
            str(activity.id),
            1,
            100,
            "2026-03-02T08:00:00.000000Z",
            "planned",
            "contact",
            ANNA,
            "Kontakt planlagt 03.03.2026 kl. 10:00: Forårskampagne",
        )
    ]
    assert len(timeline[0]) == len(TIMELINE_COLUMNS)
    assert moves == []


def test_moves_keep_the_earlier_time_and_the_owner_at_the_time() -> None:
    activity = planned()
    activity.move(
        starts_at=NOW + timedelta(days=2),
        ends_at=None,
        reason=MoveReason.NO_ANSWER,
        note=None,
        actor=ANNA,
        now=NOW,
    )
    activity.reassign(owner=BO, actor=MIA, now=NOW + timedelta(hours=1))
    activity.move(
        starts_at=NOW + timedelta(days=40),  # into summer time
        ends_at=None,
        reason=MoveReason.CUSTOMER_REQUEST,
        note="Kunden er på ferie",
        actor=BO,
        now=NOW + timedelta(hours=2),
    )
    row, timeline, moves = folded(activity.collect_events())

    assert (row["owner"], row["move_count"], row["version"]) == (BO, 2, 4)
    assert row["starts_at"] == "2026-04-11T08:00:00.000000Z"
    assert row["ends_at"] == "2026-04-11T08:30:00.000000Z"  # the duration is kept
    assert moves == [
        (
            str(activity.id),
            2,
            ANNA,
            "no_answer",
            "2026-03-02T08:00:00.000000Z",
            "2026-03-03T09:00:00.000000Z",
            "2026-03-04T08:00:00.000000Z",
            ANNA,
        ),
        (
            str(activity.id),
            4,
            BO,
            "customer_request",
            "2026-03-02T10:00:00.000000Z",
            "2026-03-04T08:00:00.000000Z",
            "2026-04-11T08:00:00.000000Z",
            BO,
        ),
    ]
    assert all(len(m) == len(MOVE_COLUMNS) for m in moves)
    assert [t[7:] for t in timeline[1:]] == [
        (ANNA, "Kontakt flyttet til 04.03.2026 kl. 09:00 (ingen svar)"),
        (MIA, f"Kontakt overdraget fra {ANNA} til {BO}"),
        (BO, "Kontakt flyttet til 11.04.2026 kl. 10:00 (kundens ønske)"),
    ]


def test_retype_then_completion() -> None:
    activity = planned()
    activity.retype(
        type_=ActivityType.SALES_MEETING, channel=Channel.VIDEO, reason=None, actor=ANNA, now=NOW
    )
    done_at = NOW + timedelta(days=1, hours=2)
    activity.complete(
        CompletionRequest(NOTE, "Send tilbud senest fredag"),
        profile=None,
        next_activity_id=None,
        actor=ANNA,
        now=done_at,
    )
    row, timeline, _ = folded(activity.collect_events())

    assert (row["type"], row["channel"], row["status"]) == ("sales_meeting", "video", "completed")
    assert row["closed_at"] == row["updated_at"] == iso(done_at)
    assert [(t[5], t[6], t[8]) for t in timeline[1:]] == [
        ("retyped", "sales_meeting", "Kontakt ændret til Aftalt salgsmøde"),
        (
            "completed",
            "sales_meeting",
            "Aftalt salgsmøde gennemført 03.03.2026 kl. 11:00. "
            "Næste skridt: Send tilbud senest fredag",
        ),
    ]


def test_a_registered_activity_starts_completed_at_the_time_it_was_held() -> None:
    held = NOW - timedelta(hours=3)
    request = RegistrationRequest(
        "K2", ANNA, ActivityType.CONTACT, Channel.PHONE, held, NOTE + "\n\nog\tmere"
    )
    activity = Activity.register(
        uuid.uuid4(), request, profile=None, next_activity_id=None, actor=ANNA, now=NOW
    )
    row, timeline, _ = folded(activity.collect_events())

    assert (row["status"], row["registered"]) == ("completed", True)
    assert row["starts_at"] == row["ends_at"] == iso(held)
    assert row["created_at"] == row["closed_at"] == iso(NOW)
    # the note stands in for the missing subject, on one line
    assert timeline[0][8] == f"Kontakt registreret, holdt 02.03.2026 kl. 06:00: {NOTE} og mere"


def test_summaries_are_clipped() -> None:
    activity = planned()
    activity.cancel(next_activity_id=None, reason="x" * 500, actor=ANNA, now=NOW)
    _, timeline, _ = folded(activity.collect_events())
    assert len(timeline[-1][8]) == 200
    assert timeline[-1][8].endswith("x…")


def test_the_given_row_is_left_untouched() -> None:
    activity = planned()
    (created,) = activity.collect_events()
    row, _, _ = fold(None, created, 1)
    before = dict(row)
    activity.cancel(next_activity_id=None, reason="Kunden lukker", actor=ANNA, now=NOW)
    (cancelled,) = activity.collect_events()
    new, _, _ = fold(row, cancelled, 2)
    assert row == before
    assert new["status"] == "cancelled"


def test_an_event_without_its_start_is_refused() -> None:
    activity = planned()
    activity.cancel(next_activity_id=None, reason="Kunden lukker", actor=ANNA, now=NOW)
    _, cancelled = activity.collect_events()
    with pytest.raises(UnknownActivity):
        fold(None, cancelled, 7)


def test_times_are_stored_as_utc_text_whatever_their_zone() -> None:
    cet = timezone(timedelta(hours=1))
    activity = planned(starts_at=datetime(2026, 3, 3, 10, 0, 0, 1, tzinfo=cet))
    row, _, _ = folded(activity.collect_events())
    assert row["starts_at"] == "2026-03-03T09:00:00.000001Z" == iso(activity.starts_at)


def test_only_activity_events_and_r8_gaps_are_followed() -> None:
    assert len(ACTIVITY_TOPICS) == 9
    assert all(t.startswith("activity.domain:Activity.") for t in ACTIVITY_TOPICS)
    assert (
        *ACTIVITY_TOPICS,
        "activity.domain:CustomerFile.GapOpened",
        "activity.domain:CustomerFile.GapClosed",
    ) == FOLLOWED_TOPICS


def test_an_edit_changes_the_subject_and_says_so() -> None:
    activity = planned()
    activity.edit(subject="Sommerkampagne", agenda="Budget og datoer", actor=BO, now=NOW)
    row, timeline, _ = folded(activity.collect_events())
    assert row["subject"] == "Sommerkampagne"
    assert (timeline[-1][5], timeline[-1][7], timeline[-1][8]) == (
        "edited",
        BO,
        "Kontakt redigeret: Sommerkampagne",
    )


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    cursor = encode_cursor(("2026-03-03T09:00:00.000000Z", "a-b"))
    assert "=" not in cursor
    assert decode_cursor(cursor, (str, str)) == ["2026-03-03T09:00:00.000000Z", "a-b"]
    for bad in ("", "!!", encode_cursor((1,)), encode_cursor(("x", 2))):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad, (str, str))


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(min_size=1, max_size=200).filter(is_text),
    starts_at=st.datetimes(
        min_value=NOW.replace(tzinfo=None) + timedelta(minutes=1),
        max_value=latest(NOW).replace(tzinfo=None),
        timezones=st.just(UTC),
    ),
    minutes=st.integers(1, 24 * 60),
)
def test_whatever_the_door_accepts_folds(subject: str, starts_at: datetime, minutes: int) -> None:
    try:
        activity = planned(starts_at, subject=subject, minutes=minutes, agenda=subject)
    except DomainError:
        assume(False)  # the rules refuse it (R5: a subject that says nothing); not our case

    row, timeline, _ = folded(activity.collect_events())

    assert row["subject"] == activity.subject  # as the rules normalised it
    assert len(timeline) == 1
