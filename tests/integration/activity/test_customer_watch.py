"""The customer watch with a database.

R8 gaps: opened by the watch as time and the registry move, closed in the save of the plan
that closes them, folded into the report, published in order.

The cases of the judgement itself are unit tests (tests/unit/activity/test_customer_file.py);
here: the watch finds its candidates in the read model and the directory, a gap and the plan
that closes it commit together, and the report and the relay show what the file holds. And a
customer's new consultant: its open activities follow, once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from activity.application import ActivityApplication
from activity.consumers import CustomerDirectory
from activity.customer_watch import CustomerWatch
from activity.domain import Activity, CompletionRequest, CustomerFile, PlanRequest
from activity.projections import ActivityReadModel, follower
from activity.relay import gap_message
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import ActivityType, Channel, MoveReason, Segment
from crm_contracts.gaps import FutureActivityGapClosed, FutureActivityGapOpened
from crm_platform.auth import Principal, Role

from tests.support.clock import ManualClock

ANNA = Principal("anna@example.dk", "Anna", frozenset({Role.CONSULTANT}))
MANAGER = Principal("lise@example.dk", "Lise", frozenset({Role.SALES_MANAGER}))
BO, MIA = "bo@example.dk", "mia@example.dk"
PRIORITIZED = {Segment.ANNUAL_AGREEMENT, Segment.A, Segment.B}


class Registry:
    """Customer snapshots as segmentation publishes them, one version after another."""

    def __init__(self, directory: CustomerDirectory) -> None:
        self.directory = directory
        self.versions: dict[str, int] = {}

    def publish(self, customer_id: str, segment: Segment, owner: str = ANNA.user_id) -> None:
        self.versions[customer_id] = self.versions.get(customer_id, 0) + 1
        self.directory.apply_snapshot(
            CustomerSnapshot(
                customer_id=customer_id,
                name=f"Kunde {customer_id}",
                owner=owner,
                segment=segment,
                prioritized=segment in PRIORITIZED,
                version=self.versions[customer_id],
                updated_at=datetime(2026, 1, 1, tzinfo=UTC),
                actor="segmentation",
            )
        )


@pytest.fixture
def registry(directory: CustomerDirectory) -> Registry:
    return Registry(directory)


@pytest.fixture
def watch(
    app: ActivityApplication,
    read_model: ActivityReadModel,
    directory: CustomerDirectory,
    clock: ManualClock,
) -> CustomerWatch:
    feed = follower(app, read_model)

    class CaughtUp(CustomerWatch):
        def look(self, now: datetime | None = None) -> int:
            feed.catch_up()  # the projector, as it runs beside the watch
            changed = super().look(now)
            feed.catch_up()
            return changed

    return CaughtUp(app, read_model, directory, clock)


def plan(app: ActivityApplication, customer_id: str, starts_at: datetime) -> UUID:
    return app.plan(
        ANNA,
        PlanRequest(
            customer_id,
            ANNA.user_id,
            ActivityType.STATUS_MEETING,
            Channel.PHONE,
            "Status på kampagnen",
            starts_at,
            starts_at + timedelta(hours=1),
        ),
    ).activity.id


def gap_log(app: ActivityApplication, customer_id: str) -> list[Any]:
    return [
        gap_message(e)
        for e in app.events.get(CustomerFile.id_for(customer_id))
        if isinstance(e, CustomerFile.GapOpened | CustomerFile.GapClosed)
    ]


def test_a_customer_that_becomes_prioritized_without_activity_gets_a_gap_until_one_is_planned(
    app: ActivityApplication,
    read_model: ActivityReadModel,
    registry: Registry,
    watch: CustomerWatch,
    clock: ManualClock,
) -> None:
    registry.publish("k1", Segment.C)
    assert watch.look() == 0
    assert read_model.gaps() == []

    registry.publish("k1", Segment.A)  # a discovery meeting found a large potential
    assert watch.look() == 1
    [gap] = read_model.gaps()
    assert (gap.customer_id, gap.name, gap.owner, gap.segment) == (
        "k1",
        "Kunde k1",
        ANNA.user_id,
        "A",
    )
    assert (gap.since, gap.why, gap.activity_id) == (clock.now, "became_prioritized", None)
    assert watch.look() == 0  # seen once, opened once

    clock.advance(hours=1)
    plan(app, "k1", clock.now + timedelta(days=2))  # closes it in the plan's own save
    watch.look()
    assert read_model.gaps() == []
    opened, closed = gap_log(app, "k1")
    assert isinstance(opened, FutureActivityGapOpened)
    assert isinstance(closed, FutureActivityGapClosed)
    assert (closed.why, closed.since, closed.actor) == ("planned", opened.since, ANNA.user_id)
    assert closed.version == opened.version + 2  # the plan's scheduling, then the closing


def test_an_overdue_last_activity_opens_a_gap_since_its_time(
    app: ActivityApplication,
    read_model: ActivityReadModel,
    registry: Registry,
    watch: CustomerWatch,
    clock: ManualClock,
) -> None:
    registry.publish("k2", Segment.B)
    starts = clock.now + timedelta(hours=2)
    plan(app, "k2", starts)
    assert watch.look() == 0

    clock.advance(hours=3)  # the meeting's time passed: neither held nor moved
    assert watch.look() == 1
    [gap] = read_model.gaps(owner=ANNA.user_id, segment="B")
    assert (gap.why, gap.since) == ("overdue", starts)
    assert gap.activity_id is not None
    assert read_model.gaps(owner=BO) == []
    assert read_model.gaps(segment="A") == []


def test_a_gap_closes_when_the_customer_is_no_longer_prioritized(
    app: ActivityApplication,
    read_model: ActivityReadModel,
    registry: Registry,
    watch: CustomerWatch,
) -> None:
    registry.publish("k3", Segment.A)
    watch.look()
    registry.publish("k3", Segment.D)
    assert watch.look() == 1
    assert read_model.gaps() == []
    assert [m.why for m in gap_log(app, "k3")] == ["became_prioritized", "no_longer_prioritized"]


def test_the_report_shows_the_owner_the_registry_has_now(
    read_model: ActivityReadModel, registry: Registry, watch: CustomerWatch
) -> None:
    registry.publish("k4", Segment.A, owner=ANNA.user_id)
    watch.look()
    registry.publish("k4", Segment.A, owner=BO)
    watch.look()
    assert [g.owner for g in read_model.gaps()] == [BO]
    assert [g.customer_id for g in read_model.gaps(owner=BO)] == ["k4"]


def test_a_new_consultant_gets_the_customers_open_activities_but_not_others(
    app: ActivityApplication,
    registry: Registry,
    watch: CustomerWatch,
    clock: ManualClock,
) -> None:
    registry.publish("k5", Segment.C, owner=ANNA.user_id)
    first = plan(app, "k5", clock.now + timedelta(days=1))
    second = plan(app, "k5", clock.now + timedelta(days=2))
    covered = plan(app, "k5", clock.now + timedelta(days=3))
    app.reassign(MANAGER, covered, owner=MIA, reason="Mia dækker i uge 12")
    done = plan(app, "k5", clock.now + timedelta(hours=1))
    clock.advance(hours=2)
    app.complete(ANNA, done, CompletionRequest("Bestilte 4 annoncer i maj", "Send ordren"))
    assert watch.look() == 0

    registry.publish("k5", Segment.C, owner=BO)
    assert watch.look() == 2
    owners = {i: app.activity(i).owner for i in (first, second, covered, done)}
    assert owners == {first: BO, second: BO, covered: MIA, done: ANNA.user_id}
    [reassigned] = [e for e in app.history(first) if isinstance(e, Activity.Reassigned)]
    assert (reassigned.owner, reassigned.actor, reassigned.reason) == (
        BO,
        "activity",
        "Kunden har fået ny ansvarlig konsulent",
    )
    assert watch.look() == 0  # followed once


def test_moving_the_overdue_activity_ahead_closes_its_gap_in_the_same_save(
    app: ActivityApplication,
    read_model: ActivityReadModel,
    registry: Registry,
    watch: CustomerWatch,
    clock: ManualClock,
) -> None:
    registry.publish("k6", Segment.A)
    overdue = plan(app, "k6", clock.now + timedelta(hours=1))
    clock.advance(hours=2)
    assert watch.look() == 1
    later = clock.now + timedelta(days=1)
    app.move(ANNA, overdue, starts_at=later, ends_at=None, reason=MoveReason.NO_ANSWER, note=None)
    assert [m.why for m in gap_log(app, "k6")] == ["overdue", "planned"]
    [_, closed] = gap_log(app, "k6")
    assert (closed.actor, closed.activity_id) == (ANNA.user_id, overdue)
    watch.look()
    assert read_model.gaps() == []
