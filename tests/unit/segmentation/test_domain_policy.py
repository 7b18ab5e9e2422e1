"""The policy as data: version 1 = docs/domain.md, its JSON form, validation, the versioned book,
and the API's door to it (policy_schemas)."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from crm_contracts.enums import ActivityType, Segment
from crm_platform.errors import DomainError
from segmentation.policy import (
    DEFAULT_POLICY,
    MEETING_TYPES,
    POLICY_BOOK_ID,
    TARGET_SEGMENTS,
    THRESHOLD_SEGMENTS,
    Band,
    PolicyBook,
    parse_policy,
)
from segmentation.policy_schemas import BandIn, MeetingTargetsIn, PolicyIn, TargetsIn, ThresholdsIn

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

V1_JSON: dict[str, Any] = {
    "version": 1,
    "thresholds": {"A": "390000.00", "B": "140000.00", "C": "45000.00"},
    "targets": {
        "annual_agreement": {
            "discovery_meeting": {"min": 1, "max": 1},
            "proposal_meeting": {"min": 1, "max": 1},
            "status_meeting": {"min": 4, "max": 6},
            "sales_meeting": {"min": 0, "max": 0},
        },
        "A": {
            "discovery_meeting": {"min": 1, "max": 1},
            "proposal_meeting": {"min": 1, "max": 3},
            "status_meeting": {"min": 4, "max": 6},
            "sales_meeting": {"min": 0, "max": 0},
        },
        "B": {
            "discovery_meeting": {"min": 1, "max": 1},
            "proposal_meeting": {"min": 1, "max": 2},
            "status_meeting": {"min": 2, "max": 2},
            "sales_meeting": {"min": 1, "max": 1},
        },
        "C": {
            "discovery_meeting": {"min": 1, "max": 1},
            "proposal_meeting": {"min": 1, "max": 1},
            "status_meeting": {"min": 1, "max": 1},
            "sales_meeting": {"min": 2, "max": 2},
        },
        "D": {
            "discovery_meeting": {"min": 0, "max": 0},
            "proposal_meeting": {"min": 0, "max": 0},
            "status_meeting": {"min": 0, "max": 0},
            "sales_meeting": {"min": 2, "max": 2},
        },
    },
    "prioritized": ["annual_agreement", "A", "B"],
}


def body(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(V1_JSON)
    data.update(changes)
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(DomainError) as refused:
        parse_policy(data, version=2)
    assert refused.value.code == "policy"
    return [p["field"] for p in refused.value.details["errors"]]


def test_version_1_is_the_domain_table_in_its_json_form() -> None:
    assert DEFAULT_POLICY.to_json() == V1_JSON
    assert parse_policy(V1_JSON, version=1) == DEFAULT_POLICY


def test_bands_read_as_the_guide_writes_them() -> None:
    assert DEFAULT_POLICY.band(Segment.A, ActivityType.PROPOSAL_MEETING) == Band(1, 3)  # "1-3"
    assert DEFAULT_POLICY.band(Segment.B, ActivityType.STATUS_MEETING) == Band(2, 2)  # "2"
    assert DEFAULT_POLICY.band("annual_agreement", "status_meeting") == Band(4, 6)


def test_unsegmented_and_uncounted_types_have_no_targets() -> None:
    for meeting in ActivityType:
        assert DEFAULT_POLICY.band(Segment.UNSEGMENTED, meeting) == Band(0, 0)
    assert DEFAULT_POLICY.band(Segment.A, ActivityType.CONTACT) == Band(0, 0)


def test_a_valid_revision_parses_and_ignores_the_version_given() -> None:
    data = body(thresholds={"A": 400000, "B": "150000.5", "C": "1"}, version=99)
    data["prioritized"] = ["A", "unsegmented"]
    policy = parse_policy(data, version=2)
    assert policy.version == 2
    assert policy.thresholds[Segment.B] == Decimal("150000.50")
    assert policy.prioritized == {Segment.A, Segment.UNSEGMENTED}
    assert not policy.same_rules(DEFAULT_POLICY)


@pytest.mark.parametrize(
    "thresholds",
    [
        {"A": "390000", "B": "390000", "C": "45000"},  # equal
        {"A": "140000", "B": "390000", "C": "45000"},  # rising
        {"A": "390000", "B": "140000", "C": "0"},  # not above zero
    ],
)
def test_thresholds_must_fall_strictly_to_above_zero(thresholds: dict[str, str]) -> None:
    assert problems(body(thresholds=thresholds)) == ["thresholds"]


def test_threshold_amounts_are_exact_and_complete() -> None:
    fields = problems(body(thresholds={"A": 390000.0, "B": "-1", "D": "1"}))
    assert fields == ["thresholds.A", "thresholds.B", "thresholds.C", "thresholds.D"]


@pytest.mark.parametrize(
    ("band", "why"),
    [
        ({"min": 3, "max": 1}, "exceed"),
        ({"min": -1, "max": 1}, "negative"),
        ({"min": 1.5, "max": 2}, "whole"),
        ({"min": 1}, "band"),
        (2, "band"),
    ],
)
def test_bands_are_whole_non_negative_and_ordered(band: object, why: str) -> None:
    data = body()
    data["targets"]["B"]["status_meeting"] = band
    with pytest.raises(DomainError) as refused:
        parse_policy(data, version=2)
    (problem,) = refused.value.details["errors"]
    assert problem["field"] == "targets.B.status_meeting"
    assert why in problem["message"]


def test_the_table_has_every_segment_and_meeting_type_and_nothing_else() -> None:
    data = body()
    del data["targets"]["D"]
    del data["targets"]["C"]["sales_meeting"]
    data["targets"]["unsegmented"] = data["targets"]["A"]
    data["targets"]["A"]["contact"] = {"min": 0, "max": 0}
    assert sorted(problems(data)) == [
        "targets.A.contact",
        "targets.C.sales_meeting",
        "targets.D",
        "targets.unsegmented",
    ]


def test_prioritized_must_name_segments() -> None:
    assert problems(body(prioritized=["A", "Z"])) == ["prioritized"]
    assert problems(body(prioritized="A")) == ["prioritized"]
    assert parse_policy(body(prioritized=[]), version=2).prioritized == frozenset()


def test_unknown_fields_are_refused() -> None:
    assert problems(body(colour="blue")) == ["colour"]


def test_the_book_numbers_versions_and_refuses_an_unchanged_policy() -> None:
    book = PolicyBook.open(NOW)
    assert (book.id, book.version, book.current.policy) == (POLICY_BOOK_ID, 1, DEFAULT_POLICY)
    job = uuid.uuid4()
    draft = parse_policy(body(thresholds={"A": "400000", "B": "140000", "C": "45000"}), version=2)
    adopted = book.revise(
        draft, effective_on=date(2026, 3, 2), recomputation_id=job, actor="mia", now=NOW
    )
    assert (book.version, adopted.version, adopted.recomputation_id) == (2, 2, job)
    assert book.get(1) is not None
    assert book.get(1).policy == DEFAULT_POLICY
    assert book.get(3) is None
    same = parse_policy(draft.to_json(), version=3)
    with pytest.raises(DomainError) as refused:
        book.revise(same, effective_on=date(2026, 3, 2), recomputation_id=job, actor="mia", now=NOW)
    assert (refused.value.code, refused.value.kind) == ("policy_unchanged", "conflict")


def test_adopted_policy_json_adds_when_and_who() -> None:
    book = PolicyBook.open(NOW)
    job = uuid.uuid4()
    draft = parse_policy(body(prioritized=["A"]), version=2)
    adopted = book.revise(
        draft, effective_on=date(2026, 3, 2), recomputation_id=job, actor="mia", now=NOW
    )
    assert adopted.to_json() == {
        **draft.to_json(),
        "adopted_at": "2026-03-02T08:00:00+00:00",
        "adopted_by": "mia",
        "effective_on": "2026-03-02",
        "recomputation_id": str(job),
    }


# -- the API's door (policy_schemas): the same members parse_policy reads ------------------


def test_the_door_names_the_segments_and_meeting_types_parse_policy_reads() -> None:
    assert list(ThresholdsIn.model_fields) == [s.value for s in THRESHOLD_SEGMENTS]
    assert list(TargetsIn.model_fields) == [s.value for s in TARGET_SEGMENTS]
    assert list(MeetingTargetsIn.model_fields) == [m.value for m in MEETING_TYPES]
    assert list(BandIn.model_fields) == ["min", "max"]


def test_a_policy_passes_the_door_and_parses_as_it_was() -> None:
    door = PolicyIn.model_validate({**V1_JSON, "adopted_at": "2026-03-02T08:00:00+00:00"})

    assert door.policy_json() == V1_JSON  # the adoption left out, amounts still strings
    assert parse_policy(door.policy_json(), version=1) == DEFAULT_POLICY


def test_the_door_leaves_the_rules_across_fields_to_parse_policy() -> None:
    data = body(thresholds={"A": "1.00", "B": "2.00", "C": "0"})
    data["targets"]["B"]["status_meeting"] = {"min": 3, "max": 1}

    door = PolicyIn.model_validate(data)

    assert problems(door.policy_json()) == ["thresholds", "targets.B.status_meeting"]
