"""Segments by potential and agreement (docs/domain.md), on the policy and on the Customer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from crm_contracts.enums import Segment
from crm_platform.errors import DomainError
from segmentation.domain import Customer
from segmentation.policy import DEFAULT_POLICY
from segmentation.rules import SegmentReason

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TODAY = date(2026, 3, 2)

BOUNDARIES = [
    ("0", Segment.D),
    ("44999.99", Segment.D),
    ("45000", Segment.C),
    ("45000.00", Segment.C),
    ("139999.99", Segment.C),
    ("140000", Segment.B),
    ("389999.99", Segment.B),
    ("390000", Segment.A),
    ("1000000000", Segment.A),
]


def registered(now: datetime = NOW) -> Customer:
    customer = Customer.register(
        customer_id="c-1",
        name="Bager Hansen ApS",
        cvr="12345678",
        owner="anna@example.dk",
        policy=DEFAULT_POLICY,
        actor="mia@example.dk",
        now=now,
    )
    customer.collect_events()
    return customer


def assess(customer: Customer, amount: object, now: datetime = NOW) -> bool:
    return customer.assess_potential(
        amount,
        assessed_at=now,
        source="manual",
        note=None,
        policy=DEFAULT_POLICY,
        actor="mia@example.dk",
        now=now,
    )


@pytest.mark.parametrize(("amount", "segment"), BOUNDARIES)
def test_half_open_boundaries_on_the_policy(amount: str, segment: Segment) -> None:
    assert DEFAULT_POLICY.segment_for(Decimal(amount), agreement_active=False) is segment


@pytest.mark.parametrize(("amount", "segment"), BOUNDARIES)
def test_half_open_boundaries_on_the_customer(amount: str, segment: Segment) -> None:
    customer = registered()
    assess(customer, amount)
    events = customer.collect_events()
    assert customer.segment == segment
    changed = [e for e in events if isinstance(e, Customer.SegmentChanged)]
    assert [(e.from_segment, e.to_segment, e.reason) for e in changed] == [
        ("unsegmented", segment.value, "potential_assessed")
    ]
    assert changed[0].effective_on == TODAY
    assert changed[0].policy_version == 1


def test_no_potential_is_unsegmented_not_D() -> None:
    customer = registered()
    assert customer.segment == Segment.UNSEGMENTED
    assert customer.prioritized is False
    assert DEFAULT_POLICY.segment_for(None, agreement_active=False) is Segment.UNSEGMENTED


@pytest.mark.parametrize("amount", ["-0.01", "-1", -390000])
def test_a_negative_potential_is_refused(amount: object) -> None:
    customer = registered()
    with pytest.raises(DomainError) as refused:
        assess(customer, amount)
    assert refused.value.code == "potential"
    assert "negative" in refused.value.message
    assert customer.collect_events() == []


@pytest.mark.parametrize("amount", [390000.0, "12.345", "NaN", "Infinity", "abc", True])
def test_inexact_or_non_amounts_are_refused(amount: object) -> None:
    with pytest.raises(DomainError) as refused:
        assess(registered(), amount)
    assert refused.value.code == "potential"


def test_prioritized_follows_the_default_set() -> None:
    for amount, prioritized in [("390000", True), ("140000", True), ("139999.99", False)]:
        customer = registered()
        assess(customer, amount)
        assert customer.prioritized is prioritized


def test_the_same_segment_again_records_no_segment_change() -> None:
    customer = registered()
    assess(customer, "150000")
    customer.collect_events()
    assess(customer, "200000", NOW + timedelta(hours=1))
    events = customer.collect_events()
    assert [type(e).__name__ for e in events] == ["PotentialAssessed"]
    assert customer.segment == Segment.B


def test_a_repeated_assessment_records_nothing() -> None:
    customer = registered()
    assert assess(customer, "150000") is True
    customer.collect_events()
    assert assess(customer, "150000.00") is False
    assert customer.collect_events() == []


def test_an_older_assessment_delivered_late_does_not_override_a_newer_one() -> None:
    customer = registered()
    assess(customer, "400000")
    customer.assess_potential(
        "50000",
        assessed_at=NOW - timedelta(days=3),
        source="discovery_meeting",
        note="Afdækning",
        policy=DEFAULT_POLICY,
        actor="activity-service",
        now=NOW + timedelta(minutes=1),
    )
    assert (customer.potential, customer.segment) == (Decimal("400000.00"), Segment.A)


def test_an_assessment_in_the_future_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        registered().assess_potential(
            "1",
            assessed_at=NOW + timedelta(hours=1),
            source="manual",
            note=None,
            policy=DEFAULT_POLICY,
            actor="mia@example.dk",
            now=NOW,
        )
    assert refused.value.code == "assessed_at"


def test_an_active_agreement_overrides_and_the_segment_falls_back_when_it_ends() -> None:
    customer = registered()
    assess(customer, "50000")
    customer.collect_events()
    customer.start_agreement(
        date(2026, 3, 1), date(2026, 6, 30), policy=DEFAULT_POLICY, actor="mia", now=NOW
    )
    started = [e for e in customer.collect_events() if isinstance(e, Customer.SegmentChanged)]
    assert customer.segment == Segment.ANNUAL_AGREEMENT
    assert customer.prioritized
    assert (started[0].from_segment, started[0].reason) == ("C", "agreement_started")
    # starts_on (1 March) is before the last change (2 March): history stays ordered.
    assert started[0].effective_on == TODAY

    # The last day (inclusive) is still in the agreement.
    last_day = datetime(2026, 6, 30, 21, 59, tzinfo=UTC)  # 23:59 in Copenhagen
    assert not customer.refresh(
        DEFAULT_POLICY,
        cause=SegmentReason.POLICY_CHANGED,
        effective_on=date(2026, 6, 30),
        actor="calendar",
        now=last_day,
    )
    # The day after, it falls back to the potential, effective on ends_on + 1.
    late = datetime(2026, 7, 3, 6, 0, tzinfo=UTC)
    assert customer.refresh(
        DEFAULT_POLICY,
        cause=SegmentReason.POLICY_CHANGED,
        effective_on=date(2026, 7, 3),
        actor="calendar",
        now=late,
    )
    ended = customer.collect_events()[-1]
    assert isinstance(ended, Customer.SegmentChanged)
    assert (ended.from_segment, ended.to_segment, ended.reason, ended.effective_on) == (
        "annual_agreement",
        "C",
        "agreement_ended",
        date(2026, 7, 1),
    )
    assert customer.prioritized is False


def test_an_agreement_starting_later_changes_nothing_until_its_first_day() -> None:
    customer = registered()
    customer.start_agreement(
        date(2026, 4, 1), date(2027, 3, 31), policy=DEFAULT_POLICY, actor="mia", now=NOW
    )
    assert customer.segment == Segment.UNSEGMENTED
    first_day = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # 00:30 on 1 April in Copenhagen
    assert customer.refresh(
        DEFAULT_POLICY,
        cause=SegmentReason.POLICY_CHANGED,
        effective_on=date(2026, 4, 1),
        actor="calendar",
        now=first_day,
    )
    assert customer.segment == Segment.ANNUAL_AGREEMENT
    assert customer.collect_events()[-1].effective_on == date(2026, 4, 1)
