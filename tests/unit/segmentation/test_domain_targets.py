"""Targets and attainment against hand-computed fixtures: every row of the docs/domain.md table, a
customer who moves from B to A on 1 July, and the rounding rules (see segmentation.targets).

2026 has 365 days. "Today" is 2 July 2026 for the table rows: 31+28+31+30+31+30+2 = 183 days
have elapsed, so the expected minimum by today is min * 183/365 (1 -> 0.50 -> 0.5,
2 -> 1.003 -> 1.0, 4 -> 2.005 -> 2.0).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from crm_contracts.enums import ActivityType, Segment
from segmentation.policy import DEFAULT_POLICY, parse_policy
from segmentation.targets import (
    Status,
    attainment,
    days_by_segment,
    days_in_year,
    elapsed_days,
    segment_on,
)

D, P, S, SA = (
    ActivityType.DISCOVERY_MEETING,
    ActivityType.PROPOSAL_MEETING,
    ActivityType.STATUS_MEETING,
    ActivityType.SALES_MEETING,
)
UNDER, ON, OVER = Status.UNDER, Status.ON_TARGET, Status.OVER
JULY_2 = date(2026, 7, 2)

# segment -> (completed counts, {type: (min, max, actual, remaining, status, expected)})
TABLE = {
    Segment.ANNUAL_AGREEMENT: (
        {D: 1, P: 0, S: 5, SA: 1},
        {
            D: ("1.0", "1.0", 1, 0, ON, "0.5"),
            P: ("1.0", "1.0", 0, 1, UNDER, "0.5"),
            S: ("4.0", "6.0", 5, 0, ON, "2.0"),
            SA: ("0.0", "0.0", 1, 0, OVER, "0.0"),
        },
    ),
    Segment.A: (
        {D: 0, P: 4, S: 4, SA: 0},
        {
            D: ("1.0", "1.0", 0, 1, UNDER, "0.5"),
            P: ("1.0", "3.0", 4, 0, OVER, "0.5"),
            S: ("4.0", "6.0", 4, 0, ON, "2.0"),
            SA: ("0.0", "0.0", 0, 0, ON, "0.0"),
        },
    ),
    Segment.B: (
        {D: 1, P: 2, S: 1, SA: 3},
        {
            D: ("1.0", "1.0", 1, 0, ON, "0.5"),
            P: ("1.0", "2.0", 2, 0, ON, "0.5"),
            S: ("2.0", "2.0", 1, 1, UNDER, "1.0"),
            SA: ("1.0", "1.0", 3, 0, OVER, "0.5"),
        },
    ),
    Segment.C: (
        {D: 2, P: 1, S: 0, SA: 2},
        {
            D: ("1.0", "1.0", 2, 0, OVER, "0.5"),
            P: ("1.0", "1.0", 1, 0, ON, "0.5"),
            S: ("1.0", "1.0", 0, 1, UNDER, "0.5"),
            SA: ("2.0", "2.0", 2, 0, ON, "1.0"),
        },
    ),
    Segment.D: (
        {D: 1, P: 0, S: 0, SA: 1},
        {
            D: ("0.0", "0.0", 1, 0, OVER, "0.0"),
            P: ("0.0", "0.0", 0, 0, ON, "0.0"),
            S: ("0.0", "0.0", 0, 0, ON, "0.0"),
            SA: ("2.0", "2.0", 1, 1, UNDER, "1.0"),
        },
    ),
}


def lines_of(result: object) -> dict[ActivityType, tuple[str, str, int, int, Status, str]]:
    return {
        t: (str(x.min), str(x.max), x.actual, x.remaining, x.status, str(x.expected_by_today))
        for t, x in result.lines.items()  # type: ignore[attr-defined]
    }


@pytest.mark.parametrize("segment", list(TABLE), ids=lambda s: s.value)
def test_every_row_of_the_targets_table_for_a_whole_year(segment: Segment) -> None:
    completed, expected = TABLE[segment]
    history = [(date(2025, 6, 1), segment)]  # in the segment since before the year

    result = attainment(2026, history, DEFAULT_POLICY, completed, today=JULY_2)

    assert lines_of(result) == expected
    assert result.days_by_segment == {segment: 365}
    assert (result.days_in_year, result.elapsed_days) == (365, 183)


def test_B_to_A_on_1_july_is_pro_rated_by_days() -> None:
    """B from 1 Jan to 30 Jun (181 days), A from 1 Jul to 31 Dec (184 days); today 30 Sep:
    273 days elapsed, 181 in B and 92 in A.

    discovery  1*181/365 + 1*184/365 = 1.0;          expected 273/365 = 0.748 -> 0.7
    proposal   min 1.0; max (2*181 + 3*184)/365 = 914/365 = 2.504 -> 2.5 (whole: 3)
               expected 0.7
    status     min (2*181 + 4*184)/365 = 1098/365 = 3.008 -> 3.0
               max (2*181 + 6*184)/365 = 1466/365 = 4.016 -> 4.0
               expected (2*181 + 4*92)/365 = 730/365 = 2.0
    sales      (1*181 + 0*184)/365 = 0.496 -> 0.5 (whole: 1); expected 181/365 -> 0.5
    """
    history = [(date(2025, 11, 3), Segment.B), (date(2026, 7, 1), Segment.A)]
    completed = {D: 1, P: 3, S: 2, SA: 1, ActivityType.CONTACT: 9}

    result = attainment(2026, history, DEFAULT_POLICY, completed, today=date(2026, 9, 30))

    assert result.days_by_segment == {Segment.B: 181, Segment.A: 184}
    assert result.elapsed_days == 273
    assert lines_of(result) == {
        D: ("1.0", "1.0", 1, 0, ON, "0.7"),
        P: ("1.0", "2.5", 3, 0, ON, "0.7"),
        S: ("3.0", "4.0", 2, 1, UNDER, "2.0"),
        SA: ("0.5", "0.5", 1, 0, ON, "0.5"),
    }
    assert result.beside == {ActivityType.CONTACT: 9, ActivityType.UNANNOUNCED_VISIT: 0}


def test_B_to_A_statuses_at_the_edges_of_the_fractional_bands() -> None:
    history = [(date(2026, 1, 1), Segment.B), (date(2026, 7, 1), Segment.A)]
    none = attainment(2026, history, DEFAULT_POLICY, {}, today=date(2026, 12, 31))
    assert none.lines[SA].status is UNDER
    assert none.lines[SA].remaining == 1
    assert none.lines[S].remaining == 3
    four = attainment(2026, history, DEFAULT_POLICY, {P: 4, S: 5, SA: 2}, today=JULY_2)
    assert [four.lines[t].status for t in (P, S, SA)] == [OVER, OVER, OVER]
    # On the last day the accrued minimum is the whole year's.
    assert none.lines[S].expected_by_today == none.lines[S].min == Decimal("3.0")


def test_contacts_and_unannounced_visits_are_reported_beside_not_counted() -> None:
    history = [(date(2026, 1, 1), Segment.C)]
    result = attainment(
        2026,
        history,
        DEFAULT_POLICY,
        {"contact": 12, "unannounced_visit": 3, "sales_meeting": 0},
        today=JULY_2,
    )
    assert result.beside == {ActivityType.CONTACT: 12, ActivityType.UNANNOUNCED_VISIT: 3}
    assert set(result.lines) == {D, P, S, SA}
    assert all(line.actual == 0 for line in result.lines.values())


def test_unsegmented_days_carry_no_target() -> None:
    """Registered 1 April (unsegmented), assessed C the same day: 90 days before it count as
    unsegmented (no target), 275 as C: sales 2*275/365 = 1.507 -> 1.5 (whole: 2)."""
    history = [(date(2026, 4, 1), Segment.UNSEGMENTED), (date(2026, 4, 1), Segment.C)]
    result = attainment(2026, history, DEFAULT_POLICY, {SA: 2}, today=JULY_2)
    assert result.days_by_segment == {Segment.UNSEGMENTED: 90, Segment.C: 275}
    assert (str(result.lines[SA].min), result.lines[SA].status) == ("1.5", ON)
    # Expected by 2 July: C for 1 Apr..2 Jul = 93 days: 2*93/365 = 0.51 -> 0.5.
    assert str(result.lines[SA].expected_by_today) == "0.5"


def test_a_year_without_any_segmented_day_has_no_target() -> None:
    result = attainment(
        2026, [(date(2026, 2, 1), Segment.UNSEGMENTED)], DEFAULT_POLICY, {D: 1}, today=JULY_2
    )
    assert {line.status for line in result.lines.values()} == {Status.NO_TARGET}
    assert result.lines[D].min == result.lines[D].max == Decimal("0.0")


def test_a_leap_year_has_366_days() -> None:
    assert days_in_year(2028) == 366
    history = [(date(2028, 1, 1), Segment.B), (date(2028, 7, 1), Segment.A)]
    assert days_by_segment(2028, history) == {Segment.B: 182, Segment.A: 184}
    result = attainment(2028, history, DEFAULT_POLICY, {}, today=date(2028, 12, 31))
    # status min (2*182 + 4*184)/366 = 1100/366 = 3.005 -> 3.0; sales 182/366 = 0.497 -> 0.5
    assert (str(result.lines[S].min), str(result.lines[SA].max)) == ("3.0", "0.5")


def test_elapsed_days_before_during_and_after_the_year() -> None:
    assert elapsed_days(2026, date(2025, 12, 31)) == 0
    assert elapsed_days(2026, date(2026, 1, 1)) == 1
    assert elapsed_days(2026, date(2027, 5, 1)) == 365


def test_later_entries_of_the_same_day_win_and_order_does_not_matter() -> None:
    history = [
        (date(2026, 7, 1), Segment.A),
        (date(2026, 3, 1), Segment.C),
        (date(2026, 3, 1), Segment.B),
    ]
    assert segment_on(history, date(2026, 2, 28)) is Segment.UNSEGMENTED
    assert segment_on(history, date(2026, 3, 1)) is Segment.B
    assert days_by_segment(2026, history) == {
        Segment.UNSEGMENTED: 59,
        Segment.B: 122,
        Segment.A: 184,
    }


def test_a_different_policy_gives_different_targets() -> None:
    data = DEFAULT_POLICY.to_json()
    data["targets"]["B"]["status_meeting"] = {"min": 3, "max": 5}
    policy = parse_policy(data, version=2)
    result = attainment(2026, [(date(2026, 1, 1), Segment.B)], policy, {S: 4}, today=JULY_2)
    assert lines_of(result)[S] == ("3.0", "5.0", 4, 0, ON, "1.5")


def test_negative_counts_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        attainment(2026, [], DEFAULT_POLICY, {D: -1}, today=JULY_2)


def test_customers_of_one_report_share_targets_only_when_their_days_are_alike() -> None:
    shared: dict[object, object] = {}
    histories = [
        [(date(2025, 3, 1), Segment.B)],
        [(date(2024, 1, 1), Segment.B)],  # alike: B all of 2026
        [(date(2025, 3, 1), Segment.B), (date(2026, 7, 1), Segment.A)],
        [(date(2026, 5, 1), Segment.C)],  # registered in May
    ]
    for history in histories:
        alone = attainment(2026, history, DEFAULT_POLICY, {P: 1}, today=JULY_2)
        together = attainment(2026, history, DEFAULT_POLICY, {P: 1}, today=JULY_2, shared=shared)
        assert lines_of(together) == lines_of(alone)
    assert len(shared) == 3
