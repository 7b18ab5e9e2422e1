"""The attainment consumer's pure pieces: which row an activity event leaves behind, which
discovery meetings assess a potential, the on-target rule and the report's sums."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from crm_contracts.activity import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityMoved,
    ActivityRegistered,
    AttachmentAdded,
    DiscoveryProfile,
)
from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason, Segment
from segmentation.attainment import ReportRow, discovered_potential, is_on_target, row_of
from segmentation.attainment_api import (
    AttainmentReport,
    customer_csv,
    report_csv,
    report_line,
)
from segmentation.policy import DEFAULT_POLICY
from segmentation.targets import attainment

ACT = UUID("00000000-0000-0000-0000-000000000001")
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def profile(potential: str | None) -> DiscoveryProfile:
    return DiscoveryProfile(
        business="Bageri",
        situation="",
        challenges="",
        goals_and_plans="",
        advertising_needs="",
        potential_dkk=Decimal(potential) if potential else None,
        competitors="",
        strategy="",
        unique_traits="",
    )


def completed(kind: ActivityType, at: datetime, potential: str | None = None) -> ActivityCompleted:
    return ActivityCompleted(
        activity_id=ACT,
        customer_id="c1",
        version=3,
        actor="anna@example.dk",
        occurred_at=at,
        owner="anna@example.dk",
        type=kind,
        channel=Channel.PHYSICAL,
        note="Holdt",
        next_step="Følg op",
        completed_at=at,
        discovery_profile=profile(potential) if potential is not None else None,
    )


def test_a_completion_late_on_new_years_eve_utc_counts_in_the_copenhagen_year() -> None:
    # 23:30 UTC on 31 December is 00:30 on 1 January in Copenhagen (winter time, +1).
    row = row_of(completed(ActivityType.STATUS_MEETING, datetime(2025, 12, 31, 23, 30, tzinfo=UTC)))
    assert row is not None
    assert row[4:] == (
        "completed",
        None,
        "2025-12-31T23:30:00.000000Z",
        2026,
        3,
    )


def test_a_move_keeps_the_new_start_and_a_cancellation_carries_no_type() -> None:
    moved = ActivityMoved(
        activity_id=ACT,
        customer_id="c1",
        version=2,
        actor="anna@example.dk",
        occurred_at=T0,
        owner="anna@example.dk",
        type=ActivityType.PROPOSAL_MEETING,
        channel=Channel.PHONE,
        subject="Tilbud",
        from_starts_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        from_ends_at=datetime(2026, 3, 2, 10, tzinfo=UTC),
        to_starts_at=datetime(2026, 4, 2, 9, tzinfo=UTC),
        to_ends_at=datetime(2026, 4, 2, 10, tzinfo=UTC),
        reason=MoveReason.NO_ANSWER,
    )
    assert row_of(moved) == (
        str(ACT),
        "c1",
        "anna@example.dk",
        "proposal_meeting",
        "planned",
        "2026-04-02T09:00:00.000000Z",
        None,
        None,
        2,
    )
    cancelled = ActivityCancelled(
        activity_id=ACT,
        customer_id="c1",
        version=3,
        actor="anna@example.dk",
        occurred_at=T0,
        owner="anna@example.dk",
        reason="Kunden aflyste",
    )
    assert row_of(cancelled) == (
        str(ACT), "c1", "anna@example.dk", None, "cancelled", None, None, None, 3
    )  # fmt: skip


def test_attachments_change_nothing_counted() -> None:
    added = AttachmentAdded(
        activity_id=ACT,
        customer_id="c1",
        version=4,
        actor="anna@example.dk",
        occurred_at=T0,
        attachment_id=ACT,
        kind=AttachmentKind.PROPOSAL,
        filename="tilbud.pdf",
        media_type="application/pdf",
        size=10,
        sha256="0" * 64,
        uri="https://files.example.dk/tilbud.pdf",
    )
    assert row_of(added) is None


def test_only_a_held_discovery_meeting_with_a_potential_assesses_one() -> None:
    assert discovered_potential(completed(ActivityType.DISCOVERY_MEETING, T0, "450000.00")) == (
        Decimal("450000.00"),
        T0,
    )
    assert discovered_potential(completed(ActivityType.DISCOVERY_MEETING, T0, "")) is None
    assert discovered_potential(completed(ActivityType.DISCOVERY_MEETING, T0)) is None
    assert discovered_potential(completed(ActivityType.STATUS_MEETING, T0, "450000.00")) is None
    registered = ActivityRegistered(
        activity_id=ACT,
        customer_id="c1",
        version=1,
        actor="anna@example.dk",
        occurred_at=T0,
        owner="anna@example.dk",
        type=ActivityType.DISCOVERY_MEETING,
        channel=Channel.PHYSICAL,
        held_at=T0,
        note="Uanmeldt afdækning",
        discovery_profile=profile("50000.00"),
    )
    assert discovered_potential(registered) == (Decimal("50000.00"), T0)


def test_on_target_means_no_line_under_and_over_counts_as_reached() -> None:
    history = [(date(2025, 1, 1), "C")]
    done = {"discovery_meeting": 1, "proposal_meeting": 1, "status_meeting": 1}
    today = date(2026, 12, 31)
    # C: 1, 1, 1, 2 sales meetings. One sales meeting short: under.
    assert not is_on_target(
        attainment(2026, history, DEFAULT_POLICY, {**done, "sales_meeting": 1}, today=today)
    )
    assert is_on_target(
        attainment(2026, history, DEFAULT_POLICY, {**done, "sales_meeting": 5}, today=today)
    )
    unsegmented = attainment(2026, [], DEFAULT_POLICY, {}, today=today)
    assert not is_on_target(unsegmented), "no target all year is not on target"


def test_the_report_row_sums_bands_and_shares_and_the_csv_parses() -> None:
    today = date(2026, 3, 2)  # day 61 of 365
    row = ReportRow("anna@example.dk", Segment.B)
    b_all_year = [(date(2025, 6, 1), "B")]
    row.add(
        attainment(2026, b_all_year, DEFAULT_POLICY, {"status_meeting": 1}, today=today),
        {ActivityType.STATUS_MEETING: 1},
    )
    row.add(
        attainment(
            2026,
            b_all_year,
            DEFAULT_POLICY,
            {"discovery_meeting": 1, "proposal_meeting": 2, "status_meeting": 2},
            today=today,
        ),
        {},
    )
    # B: discovery 1-1, proposal 1-2, status 2-2, sales 1-1 => 5-6 per customer.
    assert (row.customers, row.on_target) == (2, 0)  # the second still lacks its sales meeting
    assert (row.actual, row.scheduled) == (6, 1)
    assert (row.recommended_min, row.recommended_max) == (Decimal("10.0"), Decimal("12.0"))
    # Per customer 0.2 + 0.2 + 0.3 + 0.2 (1*61/365 = 0.167, 2*61/365 = 0.334).
    assert row.expected_by_today == Decimal("1.8")
    assert row.share_on_target == Decimal("0.000")
    body = AttainmentReport(
        year=2026,
        as_of=datetime(2026, 3, 2, 8, tzinfo=UTC),
        owner=None,
        segment=None,
        rows=[report_line(row)],
    )
    parsed = list(csv.DictReader(io.StringIO(_text(report_csv(body)))))
    assert parsed == [
        {
            "year": "2026",
            "owner": "anna@example.dk",
            "segment": "B",
            "customers": "2",
            "on_target": "0",
            "share_on_target": "0.000",
            "actual": "6",
            "recommended_min": "10.0",
            "recommended_max": "12.0",
            "expected_by_today": "1.8",
            "scheduled": "1",
        }
    ]
    assert customer_csv  # exercised over HTTP in the integration tests


def _text(rows: list[object]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)  # type: ignore[arg-type]
    return out.getvalue()
