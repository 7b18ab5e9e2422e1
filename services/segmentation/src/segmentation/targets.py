"""Yearly meeting targets and attainment: pure functions, no I/O.

Inputs are a calendar year (in Europe/Copenhagen), the customer's segment history as
`(effective_on, segment)` pairs, a policy and the completed meetings per type. The
attainment projection calls these; tests check them against hand-computed fixtures.

Decisions (documented for the UI and the tests):
- The segment on day d is the one of the last history entry with `effective_on <= d` (for
  equal dates the later entry wins); before the first entry a customer is `unsegmented`,
  and after the last entry the segment is assumed to continue to the end of the year.
- A band is pro-rated by the days spent in each segment:
  sum(band(segment) * days_in(segment) / days_in_year), computed exactly (fractions) and
  rounded once, half-up, to one decimal (`min`, `max`). Status and `remaining` count whole
  meetings, so they use that one-decimal band rounded half-up to a whole number: with
  B -> A on 1 July the sales band is 0.5-0.5, shown as such, and one meeting is on target.
- "Expected by today" accrues the minimum day by day: sum(min(segment) * days_in(segment)
  up to and including today) / days_in_year, one decimal. With one segment all year this
  is the guide's `min * elapsed_days / days_in_year`; with a change it does not charge
  A's higher minimum for the days the customer was still B.
- `unsegmented` has no targets (0-0). A year with no segmented day at all has status
  `no_target` on every line instead of calling any meeting "over".
- Only completed meetings of the four meeting types count; contacts and unannounced
  visits are reported beside them (`beside`), never counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any, Final

from crm_contracts.enums import ActivityType, Segment

from segmentation.policy import MEETING_TYPES, Policy

REPORTED_BESIDE: Final[tuple[ActivityType, ...]] = (
    ActivityType.CONTACT,
    ActivityType.UNANNOUNCED_VISIT,
)
TENTH: Final = Decimal("0.1")

SegmentHistory = Sequence[tuple[date, Segment | str]]


class Status(StrEnum):
    UNDER = "under"
    ON_TARGET = "on_target"
    OVER = "over"
    NO_TARGET = "no_target"


@dataclass(frozen=True, slots=True)
class TargetLine:
    """One meeting type's target for the year and how far the customer has come."""

    type: ActivityType
    min: Decimal  # pro-rated, one decimal
    max: Decimal
    actual: int
    remaining: int  # whole meetings still needed to reach the minimum
    status: Status
    expected_by_today: Decimal  # the minimum accrued so far, one decimal


@dataclass(frozen=True, slots=True)
class Attainment:
    year: int
    days_in_year: int
    elapsed_days: int
    days_by_segment: Mapping[Segment, int]
    lines: Mapping[ActivityType, TargetLine]
    beside: Mapping[ActivityType, int]  # contacts and unannounced visits, not counted


def year_span(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


def days_in_year(year: int) -> int:
    first, last = year_span(year)
    return (last - first).days + 1


def elapsed_days(year: int, today: date) -> int:
    """Days of `year` up to and including `today` (0 before the year, all after it)."""
    first, last = year_span(year)
    if today < first:
        return 0
    return (min(today, last) - first).days + 1


def segment_on(history: SegmentHistory, day: date) -> Segment:
    current = Segment.UNSEGMENTED
    for effective_on, segment in _ordered(history):
        if effective_on > day:
            break
        current = Segment(segment)
    return current


def days_by_segment(
    year: int, history: SegmentHistory, *, through: date | None = None
) -> dict[Segment, int]:
    """Days of `year` (up to and including `through`, default the year's end) per segment."""
    first, last = year_span(year)
    end = last if through is None else min(through, last)
    days: dict[Segment, int] = {}
    if end < first:
        return days
    # Walk the change points instead of the days: a history has a handful of entries.
    current = segment_on(history, first)
    cursor = first
    for effective_on, segment in _ordered(history):
        if effective_on <= first:
            continue
        if effective_on > end:
            break
        days[current] = days.get(current, 0) + (effective_on - cursor).days
        current, cursor = Segment(segment), effective_on
    days[current] = days.get(current, 0) + (end - cursor).days + 1
    return {s: n for s, n in days.items() if n > 0}


def prorated_band(
    days: Mapping[Segment, int], policy: Policy, meeting: ActivityType, year_days: int
) -> tuple[Fraction, Fraction]:
    """The exact (unrounded) band for `meeting` given days per segment."""
    low = sum(
        (Fraction(policy.band(s, meeting).min * n, year_days) for s, n in days.items()),
        Fraction(0),
    )
    high = sum(
        (Fraction(policy.band(s, meeting).max * n, year_days) for s, n in days.items()),
        Fraction(0),
    )
    return low, high


def attainment(
    year: int,
    history: SegmentHistory,
    policy: Policy,
    completed: Mapping[ActivityType | str, int],
    *,
    today: date,
    shared: dict[Any, Any] | None = None,
) -> Attainment:
    """Targets, actuals, remaining, status and "expected by today" for each meeting type.

    `shared`: a dict kept across the customers of one report (one policy, year and day):
    customers whose days per segment are alike share their prorated targets, which are
    exact fractions and cost most of the computation.
    """
    year_days = days_in_year(year)
    whole_year = days_by_segment(year, history)
    so_far = days_by_segment(year, history, through=today)
    counts = _counts(completed.items())
    segmented = any(s is not Segment.UNSEGMENTED for s in whole_year)
    key = (tuple(whole_year.items()), tuple(so_far.items()))
    targets = shared.get(key) if shared is not None else None
    if targets is None:
        targets = {
            meeting: (
                *(round_tenth(b) for b in prorated_band(whole_year, policy, meeting, year_days)),
                round_tenth(prorated_band(so_far, policy, meeting, year_days)[0]),
            )
            for meeting in MEETING_TYPES
        }
        if shared is not None:
            shared[key] = targets
    lines: dict[ActivityType, TargetLine] = {}
    for meeting in MEETING_TYPES:
        shown_min, shown_max, expected = targets[meeting]
        need_min, need_max = _whole(shown_min), _whole(shown_max)
        actual = counts.get(meeting, 0)
        if not segmented:
            status = Status.NO_TARGET
        elif actual < need_min:
            status = Status.UNDER
        elif actual > need_max:
            status = Status.OVER
        else:
            status = Status.ON_TARGET
        lines[meeting] = TargetLine(
            type=meeting,
            min=shown_min,
            max=shown_max,
            actual=actual,
            remaining=max(need_min - actual, 0),
            status=status,
            expected_by_today=expected,
        )
    return Attainment(
        year=year,
        days_in_year=year_days,
        elapsed_days=elapsed_days(year, today),
        days_by_segment=whole_year,
        lines=lines,
        beside={t: counts.get(t, 0) for t in REPORTED_BESIDE},
    )


def round_tenth(value: Fraction) -> Decimal:
    """Half-up to one decimal, from the exact fraction (rounded once)."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(TENTH, rounding=ROUND_HALF_UP)


def _whole(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _ordered(history: SegmentHistory) -> list[tuple[date, Segment | str]]:
    # sorted() is stable: entries of one day keep their order, so the later one wins.
    return sorted(history, key=lambda entry: entry[0])


def _counts(items: Iterable[tuple[ActivityType | str, int]]) -> dict[ActivityType, int]:
    counts: dict[ActivityType, int] = {}
    for key, count in items:
        meeting = ActivityType(key)
        if count < 0:
            raise ValueError(f"a count of completed meetings cannot be negative: {key}={count}")
        counts[meeting] = counts.get(meeting, 0) + count
    return counts
