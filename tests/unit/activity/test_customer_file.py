"""The `CustomerFile` aggregate: what "a future activity" means for R8, and the R10 profile."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from activity.domain import CustomerFile
from activity.rules import CustomerEntry, DiscoveryProfile

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PROFILE: dict[str, object] = {
    "business": "Bageri med tre butikker",
    "situation": "Annoncerer kun på Facebook",
    "challenges": "Få kunder om eftermiddagen",
    "goals_and_plans": "Ny butik i Køge i maj",
    "advertising_needs": "Lokal synlighed før åbningen",
    "potential_dkk": "150000",
    "competitors": "Lagkagehuset",
    "strategy": "Kvalitet frem for pris",
    "unique_traits": "Surdej fra egen mølle",
}


def opened() -> CustomerFile:
    file = CustomerFile.open("c-1", NOW)
    file.collect_events()
    return file


def test_the_file_id_derives_from_the_customer() -> None:
    assert (
        CustomerFile.id_for("c-1") == CustomerFile.id_for("c-1") == CustomerFile.open("c-1", NOW).id
    )
    assert CustomerFile.id_for("c-1") != CustomerFile.id_for("c-2")


def test_R8_only_open_activities_that_start_after_now_are_future() -> None:
    file = opened()
    overdue, due_now, future, closed = (uuid.uuid4() for _ in range(4))
    file.schedule(overdue, NOW - HOUR, NOW)
    file.schedule(due_now, NOW, NOW)
    file.schedule(future, NOW + HOUR, NOW)
    file.schedule(closed, NOW + 2 * HOUR, NOW)
    file.close(closed, NOW)

    assert file.future_activities(NOW) == [future]
    assert file.future_activities(NOW, besides=future) == []
    assert file.future_activities(NOW - 2 * HOUR) == [overdue, due_now, future]


def test_R8_a_move_reschedules_the_activity_in_the_file() -> None:
    file = opened()
    activity = uuid.uuid4()
    file.schedule(activity, NOW + HOUR, NOW)
    file.schedule(activity, NOW + HOUR, NOW)  # unchanged: no event
    file.schedule(activity, NOW + 3 * HOUR, NOW)

    events = file.collect_events()
    assert [e.starts_at for e in events] == [NOW + HOUR, NOW + 3 * HOUR]
    assert file.future_activities(NOW + 2 * HOUR) == [activity]


def test_R8_closing_an_activity_that_is_not_open_records_nothing() -> None:
    file = opened()
    file.close(uuid.uuid4(), NOW)
    assert file.collect_events() == []


def test_R10_every_recorded_profile_is_kept_as_an_event() -> None:
    file = opened()
    first = DiscoveryProfile.from_mapping(PROFILE)
    second = DiscoveryProfile.from_mapping({**PROFILE, "potential_dkk": "400000"})

    file.record_profile(first, uuid.uuid4(), "anna@example.dk", NOW)
    file.record_profile(second, uuid.uuid4(), "bo@example.dk", NOW + HOUR)

    assert file.discovery_profile == second.as_dict()
    events = file.collect_events()
    assert [e.profile["potential_dkk"] for e in events] == ["150000", "400000"]
    assert [e.actor for e in events] == ["anna@example.dk", "bo@example.dk"]


# --------------------------------------------------------------------------- R8 gaps

A = CustomerEntry("c-1", "Bageriet", "A", prioritized=True, owner="anna@example.dk")
C = CustomerEntry("c-1", "Bageriet", "C", prioritized=False, owner="anna@example.dk")


def gap_events(file: CustomerFile) -> list[tuple[str, str]]:
    return [
        (type(e).__name__, e.why)
        for e in file.collect_events()
        if isinstance(e, CustomerFile.GapOpened | CustomerFile.GapClosed)
    ]


def test_R8_a_gap_opens_when_a_customer_becomes_prioritized_without_a_future_activity() -> None:
    file = opened()
    file.watch(C, NOW, "activity")
    assert gap_events(file) == []
    file.watch(A, NOW, "activity")
    [event] = [e for e in file.pending_events]
    assert isinstance(event, CustomerFile.GapOpened)
    assert (event.since, event.why, event.segment, event.owner, event.activity_id) == (
        NOW,
        "became_prioritized",
        "A",
        "anna@example.dk",
        None,
    )
    assert file.gap_since == NOW
    file.collect_events()
    file.watch(A, NOW + HOUR, "activity")  # still open: nothing new
    assert file.pending_events == []


def test_R8_a_gap_opens_since_the_last_planned_activity_became_overdue() -> None:
    file = opened()
    activity = uuid.uuid4()
    file.schedule(activity, NOW + HOUR, NOW)
    file.watch(A, NOW, "activity")
    assert gap_events(file) == []  # a future activity: no gap
    file.watch(A, NOW + 2 * HOUR, "activity")
    [event] = file.pending_events
    assert isinstance(event, CustomerFile.GapOpened)
    assert (event.since, event.why, event.activity_id) == (NOW + HOUR, "overdue", activity)


def test_R8_a_gap_closes_when_an_activity_is_planned() -> None:
    file = opened()
    file.watch(A, NOW, "activity")
    file.collect_events()
    planned = uuid.uuid4()
    file.schedule(planned, NOW + 2 * HOUR, NOW + HOUR)
    file.watch(A, NOW + HOUR, "anna@example.dk")
    closed = file.pending_events[-1]
    assert isinstance(closed, CustomerFile.GapClosed)
    assert (closed.since, closed.why, closed.activity_id, closed.actor) == (
        NOW,
        "planned",
        planned,
        "anna@example.dk",
    )
    assert file.gap_since is None


def test_R8_a_gap_closes_when_the_customer_is_no_longer_prioritized_or_gone() -> None:
    for customer, why in ((C, "no_longer_prioritized"), (None, "customer_removed")):
        file = opened()
        file.watch(A, NOW, "activity")
        file.collect_events()
        file.watch(customer, NOW + HOUR, "activity")
        assert gap_events(file) == [("GapClosed", why)]


def test_R8_the_gap_survives_a_replay() -> None:
    file = CustomerFile.open("c-1", NOW)
    file.watch(A, NOW, "activity")
    events = [*file.collect_events()]
    copy = None
    for event in events:
        copy = event.mutate(copy)
    assert isinstance(copy, CustomerFile)
    assert (copy.gap_since, copy.gap_why) == (NOW, "became_prioritized")
