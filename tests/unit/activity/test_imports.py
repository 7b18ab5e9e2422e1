"""Reading the going-live CSV: every row either a valid past activity or its line's reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from activity.domain import ImportedActivity
from activity.imports import RowProblem, read_rows
from crm_contracts.enums import ActivityType, Channel
from crm_platform.csv_table import BadFile

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
HEADER = "external_id,customer_id,owner,type,channel,held_at,note"


def rows(*lines: str, header: str = HEADER) -> list[tuple[int, ImportedActivity | RowProblem]]:
    return list(read_rows([header, *lines], NOW))


def test_a_row_becomes_a_past_activity_with_a_stable_id() -> None:
    [(line, item)] = rows(
        "old-17,k1,Anna@Example.dk,status_meeting,physical,2026-03-02T10:00+01:00,Godt møde"
    )
    assert line == 2
    assert isinstance(item, ImportedActivity)
    assert (item.owner, item.type, item.channel) == (
        "anna@example.dk",
        ActivityType.STATUS_MEETING,
        Channel.PHYSICAL,
    )
    assert item.held_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    again = rows("old-17,k1,anna@example.dk,status_meeting,physical,2026-03-02T10:00+01:00,x")
    assert isinstance(again[0][1], ImportedActivity)
    assert again[0][1].activity_id == item.activity_id


def test_danish_labels_and_a_bare_day_are_understood() -> None:
    [(_, item)] = rows("a1,k1,anna@example.dk,Statusmøde,Fysisk,2026-01-15,Godt møde")
    assert isinstance(item, ImportedActivity)
    assert (item.type, item.channel) == (ActivityType.STATUS_MEETING, Channel.PHYSICAL)
    assert item.held_at == datetime(2026, 1, 15, 11, 0, tzinfo=UTC)  # noon in Copenhagen


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (",k1,anna@example.dk,contact,phone,2026-01-15,x", "external_id"),
        ("a/1,k1,anna@example.dk,contact,phone,2026-01-15,x", "external_id"),
        ("a1,,anna@example.dk,contact,phone,2026-01-15,x", "customer_id"),
        ("a1,k1,anna,contact,phone,2026-01-15,x", "owner"),
        ("a1,k1,anna@example.dk,lunch,phone,2026-01-15,x", "type 'lunch'"),
        ("a1,k1,anna@example.dk,contact,pigeon,2026-01-15,x", "channel 'pigeon'"),
        ("a1,k1,anna@example.dk,contact,phone,15-01-2026,x", "held_at '15-01-2026'"),
        ("a1,k1,anna@example.dk,contact,phone,2026-01-15T10:00,x", "held_at"),
        ("a1,k1,anna@example.dk,contact,phone,2027-01-15,x", "between 2000-01-01 and now"),
        ("a1,k1,anna@example.dk,contact,phone,1999-12-31,x", "between 2000-01-01 and now"),
        ("a1,k1,anna@example.dk,contact,phone,2026-01-15,", "note"),
        ("a1,k1,anna@example.dk,contact,phone,2026-01-15,a\x00b", "note"),
        ("a1,k1,anna@example.dk,contact,phone,2026-01-15,x,extra", "expected 7 columns"),
    ],
)
def test_a_bad_row_is_reported_with_its_line_and_reason(row: str, reason: str) -> None:
    [(line, problem)] = rows(row)
    assert isinstance(problem, RowProblem)
    assert line == problem.line == 2
    assert any(reason in r for r in problem.reasons), problem.reasons


def test_an_external_id_twice_is_a_bad_row_the_second_time() -> None:
    first, second = rows(
        "a1,k1,anna@example.dk,contact,phone,2026-01-15,x",
        "a1,k1,anna@example.dk,contact,phone,2026-01-16,y",
    )
    assert isinstance(first[1], ImportedActivity)
    assert isinstance(second[1], RowProblem)
    assert "first on line 2" in second[1].reasons[0]


def test_every_reason_of_a_row_is_given_and_blank_lines_are_skipped() -> None:
    [(line, problem)] = rows("", "a1,,x,lunch,pigeon,never,")
    assert isinstance(problem, RowProblem)
    assert line == 3
    assert len(problem.reasons) == 6


@pytest.mark.parametrize(
    ("lines", "message"),
    [([], "empty"), (["external_id,customer_id,owner"], "type, channel, held_at, note")],
)
def test_a_file_without_its_header_is_refused_whole(lines: list[str], message: str) -> None:
    with pytest.raises(BadFile) as refused:
        list(read_rows(lines, NOW))
    assert message in refused.value.message
