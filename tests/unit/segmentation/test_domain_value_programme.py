"""The customer value programme (kundeværdiprogram) on the Customer: while a membership is in
force it puts the customer in `annual_agreement`, exactly as an annual agreement does; and
going live (`hold_segment_since`, `segment_history`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from crm_contracts.customer import ValueProgramme as ValueProgrammeMessage
from crm_contracts.enums import Segment
from crm_platform.errors import DomainError
from segmentation.domain import Customer, segment_history
from segmentation.policy import DEFAULT_POLICY
from segmentation.relay import snapshot
from segmentation.rules import SegmentReason, ValueProgramme

REGISTERED = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TODAY = date(2026, 3, 2)


def at(day: date, hour: int = 6) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def customer_with(amount: str | None = "50000") -> Customer:
    """Registered on 5 January; C from then when `amount` is 50,000."""
    customer = Customer.register(
        customer_id="c-1",
        name="Bager Hansen ApS",
        cvr=None,
        owner="anna@example.dk",
        policy=DEFAULT_POLICY,
        actor="mia@example.dk",
        now=REGISTERED,
    )
    if amount is not None:
        customer.assess_potential(
            amount,
            assessed_at=REGISTERED,
            source="manual",
            note=None,
            policy=DEFAULT_POLICY,
            actor="mia@example.dk",
            now=REGISTERED,
        )
    customer.collect_events()
    return customer


def join(c: Customer, starts: date, ends: date | None = None, now: datetime = NOW) -> None:
    c.set_value_programme(starts, ends, policy=DEFAULT_POLICY, actor="mia", now=now)


def calendar(c: Customer, day: date) -> bool:
    return c.refresh(
        DEFAULT_POLICY,
        cause=SegmentReason.POLICY_CHANGED,
        effective_on=day,
        actor="calendar",
        now=at(day),
    )


def changes(c: Customer) -> list[tuple[str, str, str, date]]:
    return [
        (e.from_segment, e.to_segment, e.reason, e.effective_on)
        for e in c.collect_events()
        if isinstance(e, Customer.SegmentChanged)
    ]


def test_a_membership_in_force_puts_the_customer_in_annual_agreement() -> None:
    c = customer_with("50000")
    join(c, date(2026, 2, 1))

    assert (c.segment, c.prioritized) == (Segment.ANNUAL_AGREEMENT, True)
    assert c.value_programme == ValueProgramme(date(2026, 2, 1), None)
    # Counted from its first day (after the last change on 5 January, not after today).
    assert changes(c) == [("C", "annual_agreement", "value_programme_started", date(2026, 2, 1))]


def test_an_open_ended_membership_stays_in_force() -> None:
    c = customer_with()
    join(c, date(2026, 2, 1))
    c.collect_events()
    assert not calendar(c, date(2036, 1, 1))
    assert c.in_annual_agreement_on(date(2036, 1, 1))


def test_a_membership_starting_later_moves_the_customer_on_its_first_day() -> None:
    c = customer_with()
    join(c, date(2026, 4, 1), date(2026, 9, 30))
    assert c.segment == Segment.C
    assert not calendar(c, date(2026, 3, 31))
    first_day = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # 00:30 on 1 April in Copenhagen
    assert c.refresh(
        DEFAULT_POLICY,
        cause=SegmentReason.POLICY_CHANGED,
        effective_on=date(2026, 4, 1),
        actor="calendar",
        now=first_day,
    )
    assert changes(c)[-1] == ("C", "annual_agreement", "value_programme_started", date(2026, 4, 1))


def test_the_last_day_is_in_force_and_the_customer_falls_back_the_day_after() -> None:
    c = customer_with()
    join(c, date(2026, 2, 1), date(2026, 6, 30))
    c.collect_events()
    last_evening = datetime(2026, 6, 30, 21, 59, tzinfo=UTC)  # 23:59 in Copenhagen
    assert not c.refresh(
        DEFAULT_POLICY,
        cause=SegmentReason.POLICY_CHANGED,
        effective_on=date(2026, 6, 30),
        actor="calendar",
        now=last_evening,
    )
    assert calendar(c, date(2026, 7, 3))  # the calendar did not run for two days
    assert changes(c) == [("annual_agreement", "C", "value_programme_ended", date(2026, 7, 1))]
    assert c.prioritized is False


def test_ending_takes_it_out_of_force_today() -> None:
    c = customer_with()
    join(c, date(2026, 2, 1))
    c.collect_events()
    c.end_value_programme(policy=DEFAULT_POLICY, actor="mia", now=NOW)

    ended = c.collect_events()
    assert isinstance(ended[0], Customer.ValueProgrammeEnded)
    assert ended[0].ends_on == date(2026, 3, 1)
    assert c.value_programme == ValueProgramme(date(2026, 2, 1), date(2026, 3, 1))
    assert c.segment == Segment.C
    segment = [e for e in ended if isinstance(e, Customer.SegmentChanged)]
    assert [(e.reason, e.effective_on) for e in segment] == [("value_programme_ended", TODAY)]


def test_ending_an_upcoming_membership_withdraws_it() -> None:
    c = customer_with()
    join(c, TODAY)
    c.end_value_programme(policy=DEFAULT_POLICY, actor="mia", now=NOW)
    assert c.value_programme is None
    assert c.segment == Segment.C


@pytest.mark.parametrize(
    "programme", [None, ValueProgramme(date(2026, 1, 1), date(2026, 3, 1))], ids=["none", "over"]
)
def test_ending_without_a_current_membership_is_a_conflict(
    programme: ValueProgramme | None,
) -> None:
    c = customer_with()
    if programme is not None:
        join(c, programme.starts_on, programme.ends_on, now=at(date(2026, 2, 1)))
    with pytest.raises(DomainError) as refused:
        c.end_value_programme(policy=DEFAULT_POLICY, actor="mia", now=NOW)
    assert (refused.value.code, refused.value.status) == ("no_value_programme", 409)


@pytest.mark.parametrize(
    ("starts", "ends"),
    [(date(2026, 5, 1), date(2026, 4, 30)), (date(2026, 1, 1), date(2026, 3, 1))],
    ids=["ends-before-it-starts", "ended-before-today"],
)
def test_a_membership_ending_before_it_starts_or_before_today_is_refused(
    starts: date, ends: date
) -> None:
    c = customer_with()
    with pytest.raises(DomainError) as refused:
        join(c, starts, ends)
    assert (refused.value.code, refused.value.field, refused.value.status) == (
        "ends_on",
        "ends_on",
        422,
    )
    assert not c.collect_events()


def test_the_same_membership_again_is_a_conflict_and_new_dates_replace_it() -> None:
    c = customer_with()
    join(c, date(2026, 2, 1))
    with pytest.raises(DomainError) as refused:
        join(c, date(2026, 2, 1))
    assert (refused.value.code, refused.value.status) == ("value_programme_unchanged", 409)
    c.collect_events()

    join(c, date(2026, 2, 1), date(2026, 12, 31))  # an end is set: still in force
    assert [type(e).__name__ for e in c.collect_events()] == ["ValueProgrammeSet"]
    assert c.value_programme == ValueProgramme(date(2026, 2, 1), date(2026, 12, 31))

    join(c, date(2026, 6, 1), None)  # postponed: not in force today
    assert c.segment == Segment.C
    assert changes(c) == [("annual_agreement", "C", "value_programme_ended", TODAY)]


def test_with_an_agreement_beside_it_the_customer_leaves_when_the_last_one_ends() -> None:
    c = customer_with()
    c.start_agreement(
        date(2026, 1, 10), date(2026, 4, 30), policy=DEFAULT_POLICY, actor="mia", now=NOW
    )
    join(c, date(2026, 2, 1), date(2026, 6, 30))
    # The agreement started first: it put the customer there.
    assert changes(c) == [("C", "annual_agreement", "agreement_started", date(2026, 1, 10))]

    assert not calendar(c, date(2026, 5, 1))  # the agreement is over, the membership is not
    assert c.segment == Segment.ANNUAL_AGREEMENT
    assert calendar(c, date(2026, 7, 1))
    assert changes(c) == [("annual_agreement", "C", "value_programme_ended", date(2026, 7, 1))]


def test_ending_the_membership_while_an_agreement_runs_changes_no_segment() -> None:
    c = customer_with()
    c.start_agreement(
        date(2026, 1, 10), date(2026, 12, 31), policy=DEFAULT_POLICY, actor="mia", now=NOW
    )
    join(c, date(2026, 2, 1))
    c.collect_events()
    c.end_value_programme(policy=DEFAULT_POLICY, actor="mia", now=NOW)
    assert c.segment == Segment.ANNUAL_AGREEMENT
    assert changes(c) == []


def test_the_membership_is_on_the_published_snapshot() -> None:
    c = customer_with()
    assert snapshot(c).value_programme is None
    join(c, date(2026, 2, 1))
    assert snapshot(c).value_programme == ValueProgrammeMessage(
        starts_on=date(2026, 2, 1), ends_on=None
    )
    c.end_value_programme(policy=DEFAULT_POLICY, actor="mia", now=NOW)
    assert snapshot(c).value_programme == ValueProgrammeMessage(
        starts_on=date(2026, 2, 1), ends_on=date(2026, 3, 1)
    )
    assert snapshot(c).segment == Segment.C


# -- going live: the current segment held since a day --------------------------------------


def test_the_current_segment_can_count_from_an_earlier_day() -> None:
    c = customer_with(None)
    c.assess_potential(
        "500000",
        assessed_at=NOW,
        source="import",
        note=None,
        policy=DEFAULT_POLICY,
        actor="mia",
        now=NOW,
    )
    assert c.segment_since == TODAY
    assert c.hold_segment_since(date(2026, 1, 1), actor="mia", now=NOW)
    assert c.segment_since == date(2026, 1, 1)
    held = c.collect_events()[-1]
    assert isinstance(held, Customer.SegmentHeldSince)
    assert (held.segment, held.since) == ("A", date(2026, 1, 1))
    assert not c.hold_segment_since(date(2026, 1, 1), actor="mia", now=NOW)  # nothing new


@pytest.mark.parametrize("since", [date(2026, 3, 3), date(2026, 2, 1)], ids=["future", "later"])
def test_segment_since_cannot_lie_ahead_of_today_or_of_the_day_on_record(since: date) -> None:
    c = customer_with()
    c.hold_segment_since(date(2026, 1, 1), actor="mia", now=NOW)
    with pytest.raises(DomainError) as refused:
        c.hold_segment_since(since, actor="mia", now=NOW)
    assert (refused.value.code, refused.value.field) == ("segment_since", "segment_since")


def test_the_segment_history_counts_the_held_segment_from_its_day() -> None:
    c = Customer.register(
        customer_id="c-1",
        name="Bager",
        cvr=None,
        owner=None,
        policy=DEFAULT_POLICY,
        actor="mia",
        now=at(date(2026, 12, 6)),
    )
    c.assess_potential(
        "500000",
        assessed_at=at(date(2026, 12, 6)),
        source="import",
        note=None,
        policy=DEFAULT_POLICY,
        actor="mia",
        now=at(date(2026, 12, 6)),
    )
    c.hold_segment_since(date(2026, 1, 1), actor="mia", now=at(date(2026, 12, 6)))
    c.assess_potential(
        "200000",
        assessed_at=at(date(2026, 12, 10)),
        source="manual",
        note=None,
        policy=DEFAULT_POLICY,
        actor="mia",
        now=at(date(2026, 12, 10)),
    )
    assert segment_history(c.collect_events()) == [
        (date(2026, 1, 1), Segment.A),
        (date(2026, 12, 10), Segment.B),
    ]


def test_a_held_segment_keeps_what_came_before_its_day() -> None:
    c = Customer.register(
        customer_id="c-1",
        name="Bager",
        cvr=None,
        owner=None,
        policy=DEFAULT_POLICY,
        actor="mia",
        now=REGISTERED,
    )
    for amount, moment in (("50000", REGISTERED), ("500000", NOW)):  # C, then A on 2 March
        c.assess_potential(
            amount,
            assessed_at=moment,
            source="manual",
            note=None,
            policy=DEFAULT_POLICY,
            actor="mia",
            now=moment,
        )
    c.hold_segment_since(date(2026, 2, 1), actor="mia", now=NOW)
    assert segment_history(c.collect_events()) == [
        (date(2026, 1, 5), Segment.UNSEGMENTED),
        (date(2026, 1, 5), Segment.C),
        (date(2026, 2, 1), Segment.A),
    ]
