"""The Customer aggregate (identity, agreements, prioritized flag), its snapshot, and the
Recomputation record."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from crm_contracts.customer import AnnualAgreement, CustomerSnapshot
from crm_contracts.enums import Segment
from crm_platform.errors import DomainError
from segmentation.domain import Customer
from segmentation.policy import DEFAULT_POLICY, parse_policy
from segmentation.recompute import DONE, FAILED, QUEUED, RUNNING, SUPERSEDED, Recomputation
from segmentation.relay import snapshot
from segmentation.rules import Agreement, SegmentReason

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TODAY = date(2026, 3, 2)


def customer(**overrides: object) -> Customer:
    fields: dict[str, object] = {
        "customer_id": "c-1",
        "name": "Bager Hansen ApS",
        "cvr": None,
        "owner": None,
        "policy": DEFAULT_POLICY,
        "actor": "mia@example.dk",
        "now": NOW,
    }
    fields.update(overrides)
    created = Customer.register(**fields)
    created.collect_events()
    return created


def start(c: Customer, starts: date, ends: date, now: datetime = NOW) -> None:
    c.start_agreement(starts, ends, policy=DEFAULT_POLICY, actor="mia", now=now)


def test_the_customer_id_is_derived_from_the_external_id() -> None:
    assert customer().id == Customer.id_for("c-1") != Customer.id_for("c-2")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("name", "  ", "name"),
        ("name", "x" * 201, "name"),
        ("cvr", "1234567", "cvr"),
        ("cvr", "1234567a", "cvr"),
        ("customer_id", "c 1", "customer_id"),
        ("customer_id", "c" * 101, "customer_id"),
        ("owner", "anna @example.dk", "owner"),
    ],
)
def test_registration_is_validated(field: str, value: str, code: str) -> None:
    with pytest.raises(DomainError) as refused:
        customer(**{field: value})
    assert refused.value.code == code


def test_a_name_of_200_characters_and_an_eight_digit_cvr_are_fine() -> None:
    c = customer(name=" " + "x" * 200 + " ", cvr="12345678")
    assert (len(c.name), c.cvr) == (200, "12345678")


def test_rename_and_change_owner_record_the_actor() -> None:
    c = customer()
    c.rename("Bageriet Hansen", actor="anna@example.dk", now=NOW)
    c.change_owner("bo@example.dk", actor="mia@example.dk", now=NOW)
    renamed, owned = c.collect_events()
    assert (renamed.name, renamed.actor) == ("Bageriet Hansen", "anna@example.dk")
    assert (owned.owner, owned.actor) == ("bo@example.dk", "mia@example.dk")
    with pytest.raises(DomainError):
        c.rename("Bageriet Hansen", actor="x", now=NOW)
    with pytest.raises(DomainError):
        c.change_owner("bo@example.dk", actor="x", now=NOW)


def test_an_agreement_that_overlaps_or_follows_directly_extends_the_current_one() -> None:
    c = customer()
    start(c, date(2026, 1, 1), date(2026, 12, 31))
    start(c, date(2027, 1, 1), date(2027, 12, 31))  # renewal, the day after
    assert c.agreement == Agreement(date(2026, 1, 1), date(2027, 12, 31))
    segment_changes = [e for e in c.collect_events() if isinstance(e, Customer.SegmentChanged)]
    assert len(segment_changes) == 1  # the renewal kept the segment


def test_a_second_agreement_with_a_gap_is_refused_while_one_is_in_force() -> None:
    c = customer()
    start(c, date(2026, 1, 1), date(2026, 6, 30))
    with pytest.raises(DomainError) as refused:
        start(c, date(2026, 7, 2), date(2026, 12, 31))
    assert (refused.value.code, refused.value.kind) == ("agreement_in_force", "conflict")
    with pytest.raises(DomainError) as same:
        start(c, date(2026, 2, 1), date(2026, 4, 1))  # inside the current one
    assert same.value.code == "agreement_unchanged"


@pytest.mark.parametrize(
    ("starts", "ends"),
    [(date(2026, 5, 1), date(2026, 4, 30)), (date(2025, 1, 1), date(2026, 3, 1))],
)
def test_an_agreement_ending_before_it_starts_or_before_today_is_refused(
    starts: date, ends: date
) -> None:
    with pytest.raises(DomainError) as refused:
        start(customer(), starts, ends)
    assert refused.value.code == "ends_on"


def test_a_past_agreement_does_not_block_a_new_one() -> None:
    c = customer(now=NOW - timedelta(days=400))
    start(c, date(2025, 1, 1), date(2025, 6, 30), now=NOW - timedelta(days=400))
    start(c, date(2026, 9, 1), date(2027, 8, 31))
    assert c.agreement == Agreement(date(2026, 9, 1), date(2027, 8, 31))


def test_ending_an_agreement_by_default_takes_it_out_of_force_today() -> None:
    c = customer()
    c.assess_potential(
        "50000",
        assessed_at=NOW,
        source="manual",
        note=None,
        policy=DEFAULT_POLICY,
        actor="mia",
        now=NOW,
    )
    start(c, date(2026, 1, 1), date(2026, 12, 31))
    assert c.segment == Segment.ANNUAL_AGREEMENT
    c.collect_events()
    c.end_agreement(None, policy=DEFAULT_POLICY, actor="mia", now=NOW)
    ended, changed = c.collect_events()
    assert isinstance(ended, Customer.AgreementEnded)
    assert ended.ends_on == TODAY - timedelta(days=1)
    assert isinstance(changed, Customer.SegmentChanged)
    assert (changed.to_segment, changed.reason, changed.effective_on) == (
        "C",
        "agreement_ended",
        TODAY,
    )
    assert c.agreement == Agreement(date(2026, 1, 1), date(2026, 3, 1))


def test_ending_an_upcoming_agreement_before_its_start_withdraws_it() -> None:
    c = customer()
    start(c, date(2026, 5, 1), date(2027, 4, 30))
    c.end_agreement(date(2026, 4, 1), policy=DEFAULT_POLICY, actor="mia", now=NOW)
    assert c.agreement is None
    assert snapshot(c).annual_agreement is None


@pytest.mark.parametrize(
    ("ends_on", "code"),
    [
        (date(2026, 2, 27), "ends_on"),
        (date(2026, 12, 31), "ends_on"),
        (date(2027, 1, 5), "ends_on"),
    ],
)
def test_ending_cannot_be_retroactive_or_lengthen(ends_on: date, code: str) -> None:
    c = customer()
    start(c, date(2026, 1, 1), date(2026, 12, 31))
    with pytest.raises(DomainError) as refused:
        c.end_agreement(ends_on, policy=DEFAULT_POLICY, actor="mia", now=NOW)
    assert refused.value.code == code


def test_ending_without_an_agreement_is_a_conflict() -> None:
    with pytest.raises(DomainError) as refused:
        customer().end_agreement(None, policy=DEFAULT_POLICY, actor="mia", now=NOW)
    assert (refused.value.code, refused.value.kind) == ("no_agreement", "conflict")


def test_a_new_prioritized_set_changes_the_flag_without_a_segment_change() -> None:
    c = customer()
    c.assess_potential(
        "50000",
        assessed_at=NOW,
        source="import",
        note=None,
        policy=DEFAULT_POLICY,
        actor="mia",
        now=NOW,
    )
    c.collect_events()
    data = DEFAULT_POLICY.to_json()
    data["prioritized"] = ["annual_agreement", "A", "B", "C"]
    policy = parse_policy(data, version=2)
    later = NOW + timedelta(days=3)
    assert c.refresh(
        policy,
        cause=SegmentReason.POLICY_CHANGED,
        effective_on=date(2026, 3, 5),
        actor="mia",
        now=later,
    )
    (event,) = c.collect_events()
    assert isinstance(event, Customer.PrioritizedChanged)
    assert (event.prioritized, event.policy_version, event.reason) == (True, 2, "policy_changed")
    assert (c.segment, c.prioritized) == (Segment.C, True)
    assert not c.refresh(
        policy,
        cause=SegmentReason.POLICY_CHANGED,
        effective_on=date(2026, 3, 5),
        actor="mia",
        now=later,
    )


def test_effective_on_never_precedes_the_previous_change_nor_passes_today() -> None:
    c = customer()
    c.assess_potential(
        "50000",
        assessed_at=NOW - timedelta(days=30),
        source="discovery_meeting",
        note="Afdækningsmøde",
        policy=DEFAULT_POLICY,
        actor="activity",
        now=NOW,
    )
    (_, changed) = c.collect_events()
    assert changed.effective_on == TODAY  # registered today: not before  # type: ignore[attr-defined]
    assert not c.refresh(
        DEFAULT_POLICY,
        cause=SegmentReason.POLICY_CHANGED,
        effective_on=date(2030, 1, 1),
        actor="x",
        now=NOW,
    )


def test_the_snapshot_is_the_contract_message() -> None:
    c = customer(cvr="12345678", owner="anna@example.dk")
    c.assess_potential(
        "390000",
        assessed_at=NOW,
        source="manual",
        note=None,
        policy=DEFAULT_POLICY,
        actor="mia@example.dk",
        now=NOW,
    )
    start(c, date(2026, 3, 2), date(2026, 12, 31), now=NOW + timedelta(minutes=5))
    assert snapshot(c) == CustomerSnapshot(
        version=5,
        actor="mia",
        customer_id="c-1",
        name="Bager Hansen ApS",
        cvr="12345678",
        owner="anna@example.dk",
        potential_dkk=Decimal("390000.00"),
        segment=Segment.ANNUAL_AGREEMENT,
        prioritized=True,
        annual_agreement=AnnualAgreement(starts_on=date(2026, 3, 2), ends_on=date(2026, 12, 31)),
        updated_at=NOW + timedelta(minutes=5),
    )


def test_a_recomputation_moves_through_its_states() -> None:
    job = Recomputation.queue(policy_version=2, effective_on=TODAY, total=10, actor="mia", now=NOW)
    assert (job.state, job.done, job.position) == (QUEUED, 0, 0)
    job.start(stop=12, total=11, now=NOW)
    job.progress(position=7, processed=6, changed=2, now=NOW)
    job.progress(position=12, processed=5, changed=0, now=NOW)
    assert (job.state, job.total, job.done, job.changed, job.position) == (RUNNING, 11, 11, 2, 12)
    job.fail("boom", NOW)
    assert (job.state, job.error, job.finished) == (FAILED, "boom", False)
    job.resume(NOW)
    job.finish(NOW + timedelta(seconds=1))
    assert (job.state, job.finished, job.finished_at) == (DONE, True, NOW + timedelta(seconds=1))
    job.supersede(uuid.uuid4(), NOW)  # a finished job stays as it ended
    assert job.state == DONE


def test_a_superseded_recomputation_is_finished() -> None:
    job = Recomputation.queue(policy_version=2, effective_on=TODAY, total=1, actor="m", now=NOW)
    newer = uuid.uuid4()
    job.supersede(newer, NOW)
    assert (job.state, job.superseded_by, job.finished) == (SUPERSEDED, newer, True)
