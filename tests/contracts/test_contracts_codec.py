"""CloudEvents binary-mode codec: round trips, exact headers, and every decode failure."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from crm_contracts import (
    ACTIVITY_EVENTS,
    CUSTOMERS,
    ActivityPlanned,
    ContractError,
    CustomerSnapshot,
    InvalidHeader,
    InvalidMessage,
    Message,
    MissingHeader,
    UnknownEventType,
    UnsupportedSpecVersion,
    UnsupportedVersion,
    WireMessage,
    decode,
    encode,
    is_tombstone,
    key_for,
    tombstone,
    topic_for,
    type_of,
)
from crm_contracts.examples import CUSTOMER_ID, example_messages

SOURCE = "/crm/activity"
EXAMPLES = example_messages()


def _planned() -> ActivityPlanned:
    return next(m for m in EXAMPLES if isinstance(m, ActivityPlanned))


def _snapshot() -> CustomerSnapshot:
    return next(m for m in EXAMPLES if isinstance(m, CustomerSnapshot))


def _without(wire: WireMessage, name: str) -> WireMessage:
    return replace(wire, headers=tuple(h for h in wire.headers if h[0] != name))


def _with(wire: WireMessage, name: str, value: bytes) -> WireMessage:
    return replace(wire, headers=(*_without(wire, name).headers, (name, value)))


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type_of(m))
def test_every_message_type_round_trips(message: Message) -> None:
    wire = encode(message, source=SOURCE, event_id="e-1")

    decoded = decode(wire)

    assert decoded.message == message
    assert type(decoded.message) is type(message)
    assert decoded.type == type_of(message)
    assert decoded.id == "e-1"
    assert decoded.source == SOURCE
    assert decoded.subject == key_for(message)
    assert decoded.time == message.event_time()
    assert wire.topic == topic_for(message)
    assert wire.key == key_for(message)


def test_headers_are_exactly_the_cloudevents_binary_mode_set() -> None:
    message = _planned()
    wire = encode(
        message,
        source=SOURCE,
        event_id="evt-42",
        time=datetime(2025, 3, 3, 9, 30, 15, 123000, tzinfo=UTC),
    )

    assert wire.headers == (
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt-42"),
        ("ce_source", b"/crm/activity"),
        ("ce_type", b"crm.activity.planned.v1"),
        ("ce_time", b"2025-03-03T09:30:15.123000Z"),
        ("ce_subject", str(message.activity_id).encode()),
        ("content-type", b"application/json"),
    )
    assert wire.topic == ACTIVITY_EVENTS
    assert wire.key == str(message.activity_id)


def test_value_is_compact_json_of_the_payload_with_codes_not_labels() -> None:
    wire = encode(_planned(), source=SOURCE)

    payload = json.loads(wire.value)
    compact = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert wire.value == compact
    assert payload["type"] == "discovery_meeting"
    assert payload["channel"] == "physical"
    assert payload["starts_at"] == "2025-03-10T09:00:00Z"
    assert "ce_type" not in payload


def test_defaults_uuid4_id_message_time_and_aggregate_subject() -> None:
    message = _snapshot()
    wire = encode(message, source="/crm/segmentation")

    assert uuid.UUID(wire.header("ce_id").decode()).version == 4  # type: ignore[union-attr]
    assert wire.header("ce_time") == b"2025-03-12T14:31:00Z"
    assert wire.header("ce_subject") == CUSTOMER_ID.encode()
    assert (wire.topic, wire.key) == (CUSTOMERS, CUSTOMER_ID)


def test_subject_and_topic_can_be_overridden() -> None:
    wire = encode(_planned(), source=SOURCE, subject="other", topic="t.1234")

    assert wire.header("ce_subject") == b"other"
    assert wire.topic == "t.1234"
    assert decode(wire).subject == "other"


def test_encode_refuses_naive_time_and_empty_source() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        encode(_planned(), source=SOURCE, time=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="source"):
        encode(_planned(), source="")


def test_decimal_survives_as_a_string() -> None:
    wire = encode(_snapshot(), source=SOURCE)

    assert json.loads(wire.value)["potential_dkk"] == "390000.00"
    decoded = decode(wire).message
    assert isinstance(decoded, CustomerSnapshot)
    assert decoded.potential_dkk == Decimal("390000.00")
    assert isinstance(decoded.potential_dkk, Decimal)


def test_incoming_extra_fields_are_tolerated_and_dropped() -> None:
    wire = encode(_planned(), source=SOURCE)
    payload = json.loads(wire.value)
    payload["added_in_a_later_release"] = {"anything": 1}
    payload["agenda"] = "still here"

    decoded = decode(replace(wire, value=json.dumps(payload).encode()))

    assert isinstance(decoded.message, ActivityPlanned)
    assert decoded.message.agenda == "still here"
    assert "added_in_a_later_release" not in decoded.message.model_dump()


def test_extra_fields_in_a_nested_object_are_tolerated_too() -> None:
    snapshot = _snapshot()
    payload = json.loads(snapshot.model_dump_json())
    payload["annual_agreement"]["programme"] = "gold"
    wire = replace(encode(snapshot, source=SOURCE), value=json.dumps(payload).encode())

    assert decode(wire).message == snapshot


def test_tombstones_are_recognised_not_decoded() -> None:
    wire = tombstone(CUSTOMERS, CUSTOMER_ID)

    assert is_tombstone(wire)
    assert not is_tombstone(encode(_snapshot(), source=SOURCE))
    with pytest.raises(InvalidMessage, match="tombstone"):
        decode(wire)


# ----------------------------------------------------------------------------- decode errors


def test_unknown_type() -> None:
    wire = _with(encode(_planned(), source=SOURCE), "ce_type", b"crm.invoice.sent.v1")

    with pytest.raises(UnknownEventType, match=r"unknown event type 'crm.invoice.sent.v1'") as e:
        decode(wire)
    assert e.value.event_type == "crm.invoice.sent.v1"


def test_foreign_type_string_is_unknown() -> None:
    wire = _with(encode(_planned(), source=SOURCE), "ce_type", b"com.example.thing")

    with pytest.raises(UnknownEventType, match=r"com\.example\.thing"):
        decode(wire)


def test_known_event_in_an_unsupported_version() -> None:
    wire = _with(encode(_planned(), source=SOURCE), "ce_type", b"crm.activity.planned.v9")

    with pytest.raises(UnsupportedVersion, match=r"'crm.activity.planned.v9'.*v1") as e:
        decode(wire)
    assert e.value.supported == ("crm.activity.planned.v1",)


def test_bad_specversion() -> None:
    wire = _with(encode(_planned(), source=SOURCE), "ce_specversion", b"0.3")

    with pytest.raises(UnsupportedSpecVersion, match=r"ce_specversion.*'0.3'.*'1.0'"):
        decode(wire)


@pytest.mark.parametrize(
    "header", ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"]
)
def test_missing_header(header: str) -> None:
    wire = _without(encode(_planned(), source=SOURCE), header)

    with pytest.raises(MissingHeader, match=f"'{header}': missing") as e:
        decode(wire)
    assert e.value.header == header


@pytest.mark.parametrize(
    ("header", "value", "problem"),
    [
        ("ce_id", b"", "empty"),
        ("ce_source", b"\xff\xfe", "UTF-8"),
        ("ce_time", b"yesterday", "RFC 3339"),
        ("ce_time", b"2025-03-03T09:30:00", "no UTC offset"),
        ("content-type", b"application/avro", "not application/json"),
    ],
)
def test_invalid_header(header: str, value: bytes, problem: str) -> None:
    wire = _with(encode(_planned(), source=SOURCE), header, value)

    with pytest.raises(InvalidHeader, match=f"'{header}'.*{problem}"):
        decode(wire)


def test_conflicting_duplicate_header() -> None:
    wire = encode(_planned(), source=SOURCE)
    wire = wire.with_headers((("ce_id", b"another"),))

    with pytest.raises(InvalidHeader, match=r"'ce_id'.*more than once"):
        decode(wire)


def test_content_type_with_charset_and_absent_content_type_are_accepted() -> None:
    wire = encode(_planned(), source=SOURCE)

    assert decode(_with(wire, "content-type", b"application/json; charset=utf-8"))
    assert decode(_without(wire, "content-type"))


def test_invalid_json() -> None:
    wire = replace(encode(_planned(), source=SOURCE), value=b'{"version": 1,')

    with pytest.raises(InvalidMessage, match=r"'crm.activity.planned.v1' payload: not valid JSON"):
        decode(wire)


def test_invalid_payload_names_the_fields_but_not_their_values() -> None:
    wire = encode(_planned(), source=SOURCE)
    payload = json.loads(wire.value)
    payload["channel"] = "pigeon"
    payload["subject"] = "secret customer detail " * 20
    del payload["owner"]

    with pytest.raises(InvalidMessage) as e:
        decode(replace(wire, value=json.dumps(payload).encode()))

    text = str(e.value)
    assert "crm.activity.planned.v1" in text
    assert "channel" in text
    assert "subject" in text
    assert "owner: Field required" in text
    assert "pigeon" not in text
    assert "secret customer detail" not in text


def test_payload_that_is_not_an_object() -> None:
    wire = replace(encode(_planned(), source=SOURCE), value=b"[1, 2]")

    with pytest.raises(InvalidMessage, match=r"crm\.activity\.planned\.v1"):
        decode(wire)


def test_payload_of_another_type_than_announced_is_invalid() -> None:
    wire = _with(encode(_snapshot(), source=SOURCE), "ce_type", b"crm.activity.planned.v1")

    with pytest.raises(InvalidMessage, match="activity_id: Field required"):
        decode(wire)


def test_every_decode_error_is_a_contract_error() -> None:
    for error in (
        UnknownEventType,
        UnsupportedVersion,
        UnsupportedSpecVersion,
        MissingHeader,
        InvalidHeader,
        InvalidMessage,
    ):
        assert issubclass(error, ContractError)
