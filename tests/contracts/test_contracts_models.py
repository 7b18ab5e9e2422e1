"""Contract models: what a producer may and may not publish."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from crm_contracts import (
    ActivityCompleted,
    ActivityMoved,
    ActivityPlanned,
    AnnualAgreement,
    AttachmentAdded,
    CustomerSnapshot,
    DiscoveryProfile,
)
from crm_contracts.examples import example_messages
from crm_contracts.primitives import ID_MAX, NOTE_MAX, REASON_MAX, SUBJECT_MAX
from pydantic import ValidationError

EXAMPLES = {type(m): m for m in example_messages()}


def _fields(model: type[Any]) -> dict[str, Any]:
    return EXAMPLES[model].model_dump()


def test_naive_datetimes_are_refused() -> None:
    fields = _fields(ActivityPlanned) | {"starts_at": datetime(2025, 3, 10, 9)}

    with pytest.raises(ValidationError, match="starts_at"):
        ActivityPlanned(**fields)


def test_naive_datetimes_are_refused_in_json_too() -> None:
    payload = json.loads(EXAMPLES[ActivityPlanned].model_dump_json())
    payload["occurred_at"] = "2025-03-03T08:00:00"

    with pytest.raises(ValidationError, match="occurred_at"):
        ActivityPlanned.model_validate_json(json.dumps(payload))


def test_aware_datetimes_are_normalised_to_utc() -> None:
    copenhagen_summer = timezone(timedelta(hours=2))
    fields = _fields(ActivityPlanned) | {
        "starts_at": datetime(2025, 6, 10, 11, tzinfo=copenhagen_summer),
        "ends_at": datetime(2025, 6, 10, 12, tzinfo=copenhagen_summer),
    }

    planned = ActivityPlanned(**fields)

    assert planned.starts_at == datetime(2025, 6, 10, 9, tzinfo=UTC)
    assert planned.starts_at.utcoffset() == timedelta(0)
    assert json.loads(planned.model_dump_json())["starts_at"] == "2025-06-10T09:00:00Z"


@pytest.mark.parametrize(
    ("model", "field", "limit"),
    [
        (ActivityPlanned, "subject", SUBJECT_MAX),
        (ActivityPlanned, "agenda", NOTE_MAX),
        (ActivityPlanned, "customer_id", ID_MAX),
        (ActivityPlanned, "actor", ID_MAX),
        (ActivityCompleted, "note", NOTE_MAX),
        (ActivityMoved, "note", NOTE_MAX),
        (CustomerSnapshot, "name", 200),
    ],
)
def test_oversize_strings_are_refused(model: type[Any], field: str, limit: int) -> None:
    assert model(**(_fields(model) | {field: "x" * limit}))

    with pytest.raises(ValidationError, match=f"{field}\n.*at most {limit} characters"):
        model(**(_fields(model) | {field: "x" * (limit + 1)}))


def test_reason_limit() -> None:
    from crm_contracts import ActivityCancelled

    with pytest.raises(ValidationError, match="at most 500 characters"):
        ActivityCancelled(**(_fields(ActivityCancelled) | {"reason": "x" * (REASON_MAX + 1)}))


def test_unknown_fields_are_refused_when_we_construct_a_message() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ActivityPlanned(**(_fields(ActivityPlanned) | {"colour": "blue"}))


def test_strict_json_validation_also_refuses_unknown_fields() -> None:
    # Only the codec's decode() is lenient; validating on our side stays strict.
    payload = json.loads(EXAMPLES[ActivityPlanned].model_dump_json()) | {"colour": "blue"}

    with pytest.raises(ValidationError, match="colour"):
        ActivityPlanned.model_validate_json(json.dumps(payload))


def test_messages_are_frozen() -> None:
    planned = EXAMPLES[ActivityPlanned]
    assert isinstance(planned, ActivityPlanned)

    with pytest.raises(ValidationError, match="frozen"):
        planned.subject = "changed"


def test_version_starts_at_one() -> None:
    with pytest.raises(ValidationError, match="version"):
        ActivityPlanned(**(_fields(ActivityPlanned) | {"version": 0}))


def test_planned_time_must_not_end_before_it_starts() -> None:
    fields = _fields(ActivityPlanned)

    with pytest.raises(ValidationError, match="ends_at must be after starts_at"):
        ActivityPlanned(**(fields | {"ends_at": fields["starts_at"]}))


def test_move_checks_both_spans() -> None:
    fields = _fields(ActivityMoved)

    with pytest.raises(ValidationError, match="new time: ends_at must be after starts_at"):
        ActivityMoved(**(fields | {"to_ends_at": fields["to_starts_at"] - timedelta(hours=1)}))


@pytest.mark.parametrize(
    ("given", "wire"),
    [(390000, "390000.00"), ("389999.99", "389999.99"), (Decimal("45000.5"), "45000.50")],
)
def test_money_is_exact_with_two_decimals_on_the_wire(given: object, wire: str) -> None:
    snapshot = CustomerSnapshot(**(_fields(CustomerSnapshot) | {"potential_dkk": given}))

    assert json.loads(snapshot.model_dump_json())["potential_dkk"] == wire
    assert snapshot.potential_dkk == Decimal(wire)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        (390000.0, "not a float"),
        ("-1.00", "greater than or equal to 0"),
        ("1.001", "2 decimal places"),
        ("NaN", "finite number"),
    ],
)
def test_money_refuses_floats_negatives_and_fractions_of_oere(given: object, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        CustomerSnapshot(**(_fields(CustomerSnapshot) | {"potential_dkk": given}))


def test_money_from_a_json_float_is_refused() -> None:
    payload = json.loads(EXAMPLES[CustomerSnapshot].model_dump_json()) | {"potential_dkk": 1.5}

    with pytest.raises(ValidationError, match="not a float"):
        CustomerSnapshot.model_validate_json(json.dumps(payload))


def test_discovery_profile_potential_is_money() -> None:
    completed = EXAMPLES[ActivityCompleted]
    assert isinstance(completed, ActivityCompleted)
    assert isinstance(completed.discovery_profile, DiscoveryProfile)

    payload = json.loads(completed.model_dump_json())

    assert payload["discovery_profile"]["potential_dkk"] == "150000.00"


@pytest.mark.parametrize("cvr", ["1234567", "123456789", "1234567a"])
def test_cvr_is_eight_digits(cvr: str) -> None:
    with pytest.raises(ValidationError, match="cvr"):
        CustomerSnapshot(**(_fields(CustomerSnapshot) | {"cvr": cvr}))


def test_annual_agreement_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValidationError, match="ends_on must not be before starts_on"):
        AnnualAgreement(starts_on="2025-12-31", ends_on="2025-01-01")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("sha256", "ABC"), ("sha256", "G" * 64), ("size", -1), ("uri", "no-scheme")],
)
def test_attachment_fields(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        AttachmentAdded(**(_fields(AttachmentAdded) | {field: value}))


def test_ids_have_no_whitespace() -> None:
    with pytest.raises(ValidationError, match="owner"):
        ActivityPlanned(**(_fields(ActivityPlanned) | {"owner": "anne hansen"}))
