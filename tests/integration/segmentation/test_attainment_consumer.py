"""The attainment consumer fed contract events through `handle`, on SQLite and PostgreSQL:
actual/scheduled/remaining/status/expected by today against hand-computed targets,
pro-rating across a segment change, redelivery, and discovery meetings assessing potentials.

The clock stands at 2026-03-02 08:00 UTC (09:00 in Copenhagen): day 61 of 365."""

from __future__ import annotations

from decimal import Decimal

from crm_contracts.enums import ActivityType, Segment
from crm_platform.messaging import Delivery
from segmentation.application import SegmentationApplication
from segmentation.attainment import ActivityEventsConsumer, CustomerAttainment
from segmentation.targets import Status

from tests.integration.segmentation.test_attainment_support import (
    Feed,
    cancelled,
    completed,
    feed,
    moved,
    planned,
    register,
    registered,
    utc,
    view,
    wire,
)
from tests.support.clock import ManualClock
from tests.support.people import MIA

__all__ = ["feed", "view"]  # fixtures

D, P, S, SA = (
    ActivityType.DISCOVERY_MEETING,
    ActivityType.PROPOSAL_MEETING,
    ActivityType.STATUS_MEETING,
    ActivityType.SALES_MEETING,
)


def lines(found: CustomerAttainment) -> dict[ActivityType, tuple[object, ...]]:
    """type -> (min, max, actual, scheduled, remaining, status, expected by today)"""
    return {
        t: (
            str(line.min),
            str(line.max),
            line.actual,
            found.scheduled.get(t, 0),
            line.remaining,
            line.status,
            str(line.expected_by_today),
        )
        for t, line in found.attainment.lines.items()
    }


def b_customer_year(feed: Feed) -> None:
    """c-b's activities; c-other's status meeting must not leak into c-b's counts."""
    status_held = planned("s1", "c-b", S, utc(2026, 1, 15, 9))
    status_next = planned("s2", "c-b", S, utc(2026, 5, 10, 9))
    status_next_year = planned("s3", "c-b", S, utc(2027, 1, 10, 9))
    proposal = planned("p1", "c-b", P, utc(2026, 2, 20, 9))
    sales = planned("sa1", "c-b", SA, utc(2026, 6, 1, 9))
    old_year = planned("s0", "c-b", S, utc(2025, 12, 31, 21))
    other = planned("o1", "c-other", S, utc(2026, 1, 20, 9))
    feed(
        status_held,
        completed(status_held, utc(2026, 1, 15, 10)),
        status_next,
        status_next_year,
        proposal,
        moved(proposal, utc(2026, 4, 1, 9)),  # overdue plan moved into the future
        sales,
        cancelled(sales),
        # 23:30 UTC on New Year's Eve is 00:30 on 1 January in Copenhagen: a 2026 meeting.
        registered("d1", "c-b", D, utc(2025, 12, 31, 23, 30)),
        registered("k1", "c-b", ActivityType.CONTACT, utc(2026, 2, 1, 9)),
        registered("u1", "c-b", ActivityType.UNANNOUNCED_VISIT, utc(2026, 2, 2, 9)),
        old_year,
        completed(old_year, utc(2025, 12, 31, 22, 59)),  # 23:59 in Copenhagen: still 2025
        other,
        completed(other, utc(2026, 1, 20, 10)),
    )


def test_a_b_customer_all_year_against_the_guide(
    app: SegmentationApplication, clock: ManualClock, view: ActivityEventsConsumer, feed: Feed
) -> None:
    register(app, clock, "c-b", potential="200000", on=utc(2025, 12, 1, 9))
    b_customer_year(feed)
    found = view.customer_attainment("c-b", 2026, clock.now)
    # B: discovery 1, proposal 1-2, status 2, sales 1; expected = min * 61 / 365.
    assert lines(found) == {
        D: ("1.0", "1.0", 1, 0, 0, Status.ON_TARGET, "0.2"),
        P: ("1.0", "2.0", 0, 1, 1, Status.UNDER, "0.2"),
        S: ("2.0", "2.0", 1, 1, 1, Status.UNDER, "0.3"),
        SA: ("1.0", "1.0", 0, 0, 1, Status.UNDER, "0.2"),
    }
    assert dict(found.attainment.beside) == {
        ActivityType.CONTACT: 1,
        ActivityType.UNANNOUNCED_VISIT: 1,
    }
    assert (found.segment, found.owner, found.on_target) == (Segment.B, "anna@example.dk", False)
    assert found.attainment.elapsed_days == 61
    last_year = view.customer_attainment("c-b", 2025, clock.now)
    assert last_year.attainment.lines[S].actual == 1
    assert last_year.attainment.lines[D].actual == 0
    assert last_year.scheduled == {}, "nothing can still be scheduled in a year gone by"


def test_b_to_a_on_1_july_pro_rates_the_year_by_days_in_each_segment(
    app: SegmentationApplication, clock: ManualClock, view: ActivityEventsConsumer, feed: Feed
) -> None:
    register(app, clock, "c-ba", potential="200000", on=utc(2025, 12, 1, 9))
    clock.now = utc(2026, 7, 1, 10)
    app.assess_potential(MIA, "c-ba", amount="500000", assessed_at=utc(2026, 7, 1, 8))
    sales = planned("ba-sales", "c-ba", SA, utc(2026, 3, 10, 9))
    statuses = [planned(f"ba-s{i}", "c-ba", S, utc(2026, 2 + i, 5, 9)) for i in range(3)]
    feed(sales, completed(sales, utc(2026, 3, 10, 10)))
    for plan in statuses:
        feed(plan, completed(plan, plan.ends_at))
    found = view.customer_attainment("c-ba", 2026, clock.now)
    assert dict(found.attainment.days_by_segment) == {Segment.B: 181, Segment.A: 184}
    # sales: 1*181/365 = 0.496 -> 0.5, one whole meeting needed; A has none.
    # status: (2*181 + 4*184)/365 = 3.008 -> 3.0 .. (2*181 + 6*184)/365 = 4.016 -> 4.0.
    # proposal: (181 + 184)/365 = 1.0 .. (2*181 + 3*184)/365 = 2.504 -> 2.5.
    # expected on 1 July: B's minimum for 181 days and A's for 1 day.
    assert lines(found) == {
        D: ("1.0", "1.0", 0, 0, 1, Status.UNDER, "0.5"),
        P: ("1.0", "2.5", 0, 0, 1, Status.UNDER, "0.5"),
        S: ("3.0", "4.0", 3, 0, 0, Status.ON_TARGET, "1.0"),
        SA: ("0.5", "0.5", 1, 0, 0, Status.ON_TARGET, "0.5"),
    }
    assert found.segment == Segment.A


def test_a_redelivery_or_an_older_version_counts_nothing_twice(
    app: SegmentationApplication, clock: ManualClock, view: ActivityEventsConsumer, feed: Feed
) -> None:
    register(app, clock, "c-r", potential="200000", on=utc(2025, 12, 1, 9))
    plan = planned("r1", "c-r", S, utc(2026, 2, 1, 9))
    done = completed(plan, utc(2026, 2, 1, 10))
    _, delivered = feed(plan, done)
    view.handle(wire(done), delivered)  # the transport redelivers after a crash
    view.handle(wire(done), Delivery(delivered.topic, 1, 0))  # ... or republished elsewhere
    feed(plan)  # an older version arriving late does not reopen the meeting
    found = view.customer_attainment("c-r", 2026, clock.now)
    assert (found.attainment.lines[S].actual, found.scheduled.get(S, 0)) == (1, 0)
    assert view.position("crm.activity.events.v1:0") == 2
    assert view.position("crm.activity.events.v1:1") == 0


def test_a_held_discovery_meeting_assesses_the_potential_and_the_segment_follows(
    app: SegmentationApplication, clock: ManualClock, view: ActivityEventsConsumer, feed: Feed
) -> None:
    register(app, clock, "c-new", potential=None, on=utc(2026, 2, 1, 9))
    assert app.customer("c-new").segment == Segment.UNSEGMENTED
    plan = planned("d-new", "c-new", D, utc(2026, 3, 1, 9))
    done = completed(plan, utc(2026, 3, 1, 10), potential="450000.00")
    feed(plan, done)
    customer = app.customer("c-new").customer
    assert (customer.potential, customer.potential_source) == (
        Decimal("450000.00"),
        "discovery_meeting",
    )
    assert app.customer("c-new").segment == Segment.A
    assert app.segment_history("c-new")[-1] == (utc(2026, 3, 1).date(), Segment.A)
    version = customer.version
    feed(done)  # the same completion again, at a new offset: the application records nothing
    assert app.customer("c-new").version == version
    found = view.customer_attainment("c-new", 2026, clock.now)
    assert found.attainment.lines[D].actual == 1


def test_a_discovery_meeting_for_an_unknown_customer_is_counted_not_poison(
    clock: ManualClock, view: ActivityEventsConsumer, feed: Feed
) -> None:
    plan = planned("d-ghost", "c-ghost", D, utc(2026, 3, 1, 9))
    feed(plan, completed(plan, utc(2026, 3, 1, 10), potential="90000.00"))
    actual, _ = view.counts(2026, clock.now, "c-ghost")
    assert actual == {"c-ghost": {D: 1}}
