"""CloudEvents 1.0 in Kafka binary mode: contract model <-> ``WireMessage``.

Attributes travel as ``ce_*`` headers (UTF-8 bytes), the value is the bare JSON payload.
We always send ``ce_time`` and ``ce_subject``, so decoding requires them too, although the
CloudEvents spec leaves them optional: a message without them did not come from us.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from pydantic import ValidationError

from crm_contracts.base import Message
from crm_contracts.errors import (
    InvalidHeader,
    InvalidMessage,
    MissingHeader,
    UnsupportedSpecVersion,
)
from crm_contracts.registry import model_for, type_of
from crm_contracts.topics import key_for, topic_for
from crm_contracts.wire import Headers, WireMessage

SPECVERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"
H_SPECVERSION: Final = "ce_specversion"
H_ID: Final = "ce_id"
H_SOURCE: Final = "ce_source"
H_TYPE: Final = "ce_type"
H_TIME: Final = "ce_time"
H_SUBJECT: Final = "ce_subject"
H_CONTENT_TYPE: Final = "content-type"


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded CloudEvent: its attributes and the validated payload."""

    id: str
    source: str
    type: str
    time: datetime
    subject: str
    message: Message


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, the form ``ce_time`` uses."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a CloudEvents time must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode(
    message: Message,
    *,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
    subject: str | None = None,
    topic: str | None = None,
) -> WireMessage:
    """Wrap a contract message for publishing.

    ``event_id`` should be deterministic when a relay may publish the same change twice
    (e.g. ``f"{key}:{version}"``), so consumers can deduplicate; it defaults to a uuid4.
    ``time`` defaults to the message's own time. ``topic`` overrides the contract topic,
    for tests that need a unique topic per run.
    """
    if not source:
        raise ValueError("source must not be empty")
    if event_id is not None and not event_id:
        raise ValueError("event_id must not be empty")
    key = key_for(message)
    headers: Headers = (
        (H_SPECVERSION, SPECVERSION.encode()),
        (H_ID, (event_id or str(uuid.uuid4())).encode()),
        (H_SOURCE, source.encode()),
        (H_TYPE, type_of(message).encode()),
        (H_TIME, format_time(time or message.event_time()).encode()),
        (H_SUBJECT, (subject or key).encode()),
        (H_CONTENT_TYPE, CONTENT_TYPE.encode()),
    )
    value = message.model_dump_json().encode()
    return WireMessage(topic or topic_for(message), key, value, headers)


def decode(wire: WireMessage) -> Decoded:
    """Validate headers and payload; raise a ``ContractError`` subclass naming the problem.

    Unknown payload fields are ignored (not kept): producers may add optional fields within
    a ``vN`` before every consumer upgrades.
    """
    if is_tombstone(wire):
        raise InvalidMessage("<tombstone>", "empty value; check is_tombstone() before decode()")
    specversion = _header(wire, H_SPECVERSION)
    if specversion != SPECVERSION:
        raise UnsupportedSpecVersion(specversion)
    ce_type = _header(wire, H_TYPE)
    model = model_for(ce_type)
    event_id = _header(wire, H_ID)
    source = _header(wire, H_SOURCE)
    time = _parse_time(_header(wire, H_TIME))
    subject = _header(wire, H_SUBJECT)
    _check_content_type(wire)
    try:
        message = model.model_validate_json(wire.value, extra="ignore")
    except ValidationError as error:
        raise InvalidMessage(ce_type, _describe(error)) from None
    return Decoded(event_id, source, ce_type, time, subject, message)


def is_tombstone(wire: WireMessage) -> bool:
    """A record with no value: on ``crm.customers.v1`` it means the customer was deleted."""
    return not wire.value


def tombstone(topic: str, key: str) -> WireMessage:
    """The deletion marker for ``key`` on a compacted topic (transports send a null value)."""
    return WireMessage(topic, key, b"", ())


def _header(wire: WireMessage, name: str) -> str:
    values = {value for key, value in wire.headers if key == name}
    if not values:
        raise MissingHeader(name)
    if len(values) > 1:
        raise InvalidHeader(name, "given more than once with different values")
    try:
        text = values.pop().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidHeader(name, "not valid UTF-8") from None
    if not text:
        raise InvalidHeader(name, "empty")
    return text


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidHeader(H_TIME, f"{text!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise InvalidHeader(H_TIME, f"{text!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _check_content_type(wire: WireMessage) -> None:
    # Absent means JSON (datacontenttype is optional); anything else is not ours to parse.
    if wire.header(H_CONTENT_TYPE) is None:
        return
    value = _header(wire, H_CONTENT_TYPE)
    if value.split(";", 1)[0].strip().lower() != CONTENT_TYPE:
        raise InvalidHeader(H_CONTENT_TYPE, f"{value!r} is not {CONTENT_TYPE}")


def _describe(error: ValidationError) -> str:
    # Field paths and reasons only: input values may hold personal data that must not
    # reach logs or dead-letter metadata.
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        if item["type"] == "json_invalid":
            return f"not valid JSON ({item['msg']})"
        where = ".".join(str(part) for part in item["loc"]) or "<root>"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)
