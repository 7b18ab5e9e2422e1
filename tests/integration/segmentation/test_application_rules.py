"""Segmentation commands and queries through the Application, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from crm_contracts.enums import Segment
from crm_platform.errors import DomainError, NotFound, StaleVersion
from segmentation.application import NewCustomer, SegmentationApplication
from segmentation.domain import Customer
from segmentation.policy import DEFAULT_POLICY
from segmentation.relay import snapshot

from tests.support.clock import ManualClock
from tests.support.people import ANNA, MIA, SERVICE

BOUNDARIES = [
    ("0", Segment.D),
    ("44999.99", Segment.D),
    ("45000", Segment.C),
    ("139999.99", Segment.C),
    ("140000", Segment.B),
    ("389999.99", Segment.B),
    ("390000", Segment.A),
    ("1000000000", Segment.A),
]


def at(day: date, hour: int = 6) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def customer(app: SegmentationApplication) -> str:
    app.register_customer(
        MIA, name="Bager Hansen ApS", customer_id="c-1", cvr="12345678", owner="Anna@Example.dk"
    )
    return "c-1"


@pytest.mark.parametrize(("amount", "segment"), BOUNDARIES)
def test_segment_boundaries(
    app: SegmentationApplication, customer: str, amount: str, segment: Segment
) -> None:
    outcome = app.assess_potential(MIA, customer, amount=amount)
    assert outcome.customer.segment == segment
    view = app.customer(customer)
    assert (view.segment, view.policy_version) == (segment, 1)
    assert app.registry.registry_row(customer).segment == segment.value


def test_a_negative_potential_is_refused_and_nothing_is_saved(
    app: SegmentationApplication, customer: str
) -> None:
    with pytest.raises(DomainError) as refused:
        app.assess_potential(MIA, customer, amount="-1")
    assert refused.value.code == "potential"
    assert app.customer(customer).version == 1


def test_a_new_customer_is_unsegmented(app: SegmentationApplication, customer: str) -> None:
    view = app.customer(customer)
    assert (view.segment, view.prioritized, view.customer.owner) == (
        Segment.UNSEGMENTED,
        False,
        "anna@example.dk",
    )


def test_an_agreement_overrides_and_the_calendar_moves_customers_across_its_dates(
    app: SegmentationApplication, customer: str, clock: ManualClock
) -> None:
    app.assess_potential(MIA, customer, amount="60000")  # C
    app.start_agreement(MIA, customer, starts_on=date(2026, 3, 10), ends_on=date(2026, 3, 31))
    assert app.customer(customer).segment == Segment.C  # not in force yet

    clock.now = at(date(2026, 3, 9))
    assert app.apply_calendar(SERVICE).changed == 0
    clock.now = at(date(2026, 3, 10))
    result = app.apply_calendar(SERVICE)
    assert (result.today, result.checked, result.changed) == (date(2026, 3, 10), 1, 1)
    assert app.customer(customer).segment == Segment.ANNUAL_AGREEMENT
    assert app.customer(customer).prioritized is True
    assert app.apply_calendar(SERVICE).changed == 0  # idempotent: no change, no event

    clock.now = at(date(2026, 3, 31), hour=21)  # 23:00 in Copenhagen: still the last day
    assert app.apply_calendar(SERVICE).changed == 0
    clock.now = at(date(2026, 4, 3))  # the calendar did not run for two days
    assert app.apply_calendar(SERVICE).changed == 1
    assert app.customer(customer).segment == Segment.C
    assert app.apply_calendar(SERVICE).changed == 0

    changes = [e for e in app.history(customer) if isinstance(e, Customer.SegmentChanged)]
    assert [(e.to_segment, e.reason, e.effective_on, e.actor) for e in changes] == [
        ("C", "potential_assessed", date(2026, 3, 2), MIA.user_id),
        ("annual_agreement", "agreement_started", date(2026, 3, 10), SERVICE.user_id),
        ("C", "agreement_ended", date(2026, 4, 1), SERVICE.user_id),
    ]
    assert app.segment_history(customer) == [
        (date(2026, 3, 2), Segment.UNSEGMENTED),
        (date(2026, 3, 2), Segment.C),
        (date(2026, 3, 10), Segment.ANNUAL_AGREEMENT),
        (date(2026, 4, 1), Segment.C),
    ]


def test_an_agreement_in_force_today_applies_at_once_and_ending_it_falls_back(
    app: SegmentationApplication, customer: str, clock: ManualClock
) -> None:
    app.assess_potential(MIA, customer, amount="20000")
    started = app.start_agreement(
        MIA, customer, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31)
    )
    assert started.customer.segment == Segment.ANNUAL_AGREEMENT
    clock.advance(days=10)
    ended = app.end_agreement(MIA, customer)
    assert ended.customer.segment == Segment.D
    assert snapshot(ended.customer).annual_agreement.ends_on == date(2026, 3, 11)


def test_the_calendar_cannot_run_ahead_of_today(app: SegmentationApplication) -> None:
    with pytest.raises(DomainError):
        app.apply_calendar(SERVICE, date(2026, 3, 3))


def test_a_discovery_meeting_feeds_the_potential_once(
    app: SegmentationApplication, customer: str, clock: ManualClock
) -> None:
    held = clock.now - timedelta(hours=2)
    for _ in range(2):  # the consumer may deliver the same meeting twice
        app.assess_potential(
            SERVICE,
            customer,
            amount=Decimal("150000"),
            source="discovery_meeting",
            assessed_at=held,
            note="Afdækningsmøde: tre butikker, ny i Køge",
        )
    assessed = [e for e in app.history(customer) if isinstance(e, Customer.PotentialAssessed)]
    assert [(e.amount, e.source, e.assessed_at, e.actor) for e in assessed] == [
        (Decimal("150000.00"), "discovery_meeting", held, SERVICE.user_id)
    ]
    assert app.customer(customer).segment == Segment.B


def test_every_event_records_its_actor(
    app: SegmentationApplication, customer: str, clock: ManualClock
) -> None:
    app.rename(ANNA, customer, name="Bageriet Hansen")
    app.change_owner(MIA, customer, owner="bo@example.dk")
    app.assess_potential(SERVICE, customer, amount="400000", source="import")
    app.start_agreement(MIA, customer, starts_on=date(2026, 3, 2), ends_on=date(2026, 12, 31))
    app.end_agreement(MIA, customer, ends_on=date(2026, 6, 30))
    history = app.history(customer)
    assert [(type(e).__name__, e.actor) for e in history] == [
        ("Registered", MIA.user_id),
        ("Renamed", ANNA.user_id),
        ("OwnerChanged", MIA.user_id),
        ("PotentialAssessed", SERVICE.user_id),
        ("SegmentChanged", SERVICE.user_id),
        ("AgreementStarted", MIA.user_id),
        ("SegmentChanged", MIA.user_id),
        ("AgreementEnded", MIA.user_id),
    ]
    assert snapshot(app.customer(customer).customer).actor == MIA.user_id


def test_the_policy_is_versioned_data(app: SegmentationApplication) -> None:
    current = app.policy()
    assert (current.version, current.policy, current.adopted_at) == (1, DEFAULT_POLICY, None)
    data = DEFAULT_POLICY.to_json()
    data["thresholds"]["A"] = "400000.00"
    with pytest.raises(StaleVersion):
        app.set_policy(MIA, data, expected_version=2)
    adopted = app.set_policy(MIA, data, expected_version=1).policy
    assert adopted.version == 2
    assert app.policy().to_json()["thresholds"]["A"] == "400000.00"
    assert app.policy(1).policy == DEFAULT_POLICY
    assert app.policy(1).adopted_by == "system"
    assert app.policy(2).adopted_by == MIA.user_id
    with pytest.raises(NotFound):
        app.policy(3)
    with pytest.raises(DomainError) as unchanged:
        app.set_policy(MIA, data)
    assert unchanged.value.code == "policy_unchanged"
    data["thresholds"]["C"] = "500000"
    with pytest.raises(DomainError) as invalid:
        app.set_policy(MIA, data)
    assert invalid.value.code == "policy"
    assert app.policy().version == 2


def test_unknown_ids_are_not_found(app: SegmentationApplication) -> None:
    with pytest.raises(NotFound):
        app.customer("c-nobody")
    with pytest.raises(NotFound):
        app.assess_potential(MIA, "c-nobody", amount="1")
    with pytest.raises(NotFound):
        app.history("c-nobody")
    with pytest.raises(NotFound):
        app.recomputation(Customer.id_for("c-nobody"))


def test_an_external_id_is_registered_once(app: SegmentationApplication, customer: str) -> None:
    with pytest.raises(DomainError) as twice:
        app.register_customer(MIA, name="Someone else", customer_id=customer)
    assert (twice.value.code, twice.value.kind) == ("customer_exists", "conflict")
    generated = app.register_customer(MIA, name="Ny kunde").customer
    assert generated.customer_id != customer
    assert app.customer(generated.customer_id).customer.name == "Ny kunde"


def test_a_bulk_registration_is_all_or_nothing(app: SegmentationApplication, customer: str) -> None:
    batch = [
        NewCustomer(name="Ny", customer_id="c-2"),
        NewCustomer(name="Gammel", customer_id=customer),
    ]
    assert app.existing_customer_ids(["c-2", customer]) == {customer}
    with pytest.raises(DomainError):
        app.register_customers(SERVICE, batch)
    with pytest.raises(NotFound):
        app.customer("c-2")
    with pytest.raises(DomainError):
        app.register_customers(SERVICE, [batch[0], batch[0]])
    made = app.register_customers(
        SERVICE, [NewCustomer(name="Ny", customer_id="c-2", potential=Decimal("45000"))]
    )
    assert [(c.customer_id, c.segment, c.potential_source) for c in made] == [
        ("c-2", "C", "import")
    ]


def test_customers_are_listed_by_segment_and_owner(
    app: SegmentationApplication, customer: str
) -> None:
    app.register_customers(
        SERVICE,
        [
            NewCustomer(
                name=f"K{i}",
                customer_id=f"k-{i}",
                owner="bo@example.dk" if i % 2 else None,
                potential=Decimal(i * 100_000),
            )
            for i in range(6)
        ],
    )
    # Registration order; the customers of one bulk registration share a transaction.
    assert sorted(r.customer_id for r in app.customers(segment=Segment.B)) == ["k-2", "k-3"]
    assert sorted(r.customer_id for r in app.customers(owner="BO@example.dk")) == [
        "k-1",
        "k-3",
        "k-5",
    ]
    first = app.customers(limit=3)
    rest = app.customers(after=first[-1].seq, limit=10)
    listed = [r.customer_id for r in first + rest]
    assert listed[0] == "c-1"
    assert sorted(listed[1:]) == [f"k-{i}" for i in range(6)]
    potentials = {r.customer_id: r.potential for r in first + rest}
    assert potentials["k-5"] == Decimal("500000.00")
    assert potentials["c-1"] is None


def test_the_customer_as_it_was(app: SegmentationApplication, customer: str) -> None:
    app.assess_potential(MIA, customer, amount="50000")
    assert app.customer(customer, version=1).segment == Segment.UNSEGMENTED
    assert app.customer(customer).segment == Segment.C
