"""Constrained field types used by every contract model.

Limits are explicit so a consumer in any language can size its storage from the schema,
and so an oversize value is refused at the producer instead of failing downstream.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from crm_contracts.patterns import ID_PATTERN, MAILBOX_PATTERN, NAME_PATTERN, TEXT_PATTERN

ID_MAX: Final = 100
SUBJECT_MAX: Final = 200
NAME_MAX: Final = 200
REASON_MAX: Final = 500
NOTE_MAX: Final = 10_000
FILENAME_MAX: Final = 255
MEDIA_TYPE_MAX: Final = 255
URI_MAX: Final = 2048
MAILBOX_MAX: Final = 254
EXTERNAL_ID_MAX: Final = 512
MONEY_PATTERN: Final = r"^\d{1,12}\.\d{2}$"


def _to_utc(value: datetime) -> datetime:
    # One canonical zone on the wire keeps ordering and equality trivial for consumers.
    return value.astimezone(UTC)


UtcDateTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware instant, normalised to UTC; naive datetimes are refused."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]
"""An opaque identifier (customer): see `ID_PATTERN`, at most 100 characters."""

UserId = Annotated[str, StringConstraints(min_length=3, max_length=ID_MAX, pattern=MAILBOX_PATTERN)]
"""A consultant or manager, by the e-mail address that is also their Outlook mailbox."""


def text(max_length: int, min_length: int = 0) -> StringConstraints:
    """The constraints of free text: at most `max_length` characters, see `TEXT_PATTERN`."""
    return StringConstraints(min_length=min_length, max_length=max_length, pattern=TEXT_PATTERN)


Subject = Annotated[str, text(SUBJECT_MAX, 1)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)]
Reason = Annotated[str, text(REASON_MAX, 1)]
Note = Annotated[str, text(NOTE_MAX, 1)]
"""Free text that must say something; the domain decides what counts as non-trivial (R4)."""

ProfileText = Annotated[str, text(NOTE_MAX)]
"""A discovery-profile answer; may be empty when the customer had nothing to tell."""

Version = Annotated[int, Field(ge=1, description="Aggregate version after this change.")]

Cvr = Annotated[str, StringConstraints(pattern=r"^\d{8}$")]
"""Danish company registration number: exactly eight digits."""

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Filename = Annotated[str, text(FILENAME_MAX, 1)]
MediaType = Annotated[
    str,
    StringConstraints(max_length=MEDIA_TYPE_MAX, pattern=r"^[\w.+-]+/[\w.+-]+(;[ -~]*)?$"),
]
Uri = Annotated[
    str, StringConstraints(max_length=URI_MAX, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:[!-~]+$")
]
Mailbox = Annotated[str, StringConstraints(max_length=MAILBOX_MAX, pattern=MAILBOX_PATTERN)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=EXTERNAL_ID_MAX)]
"""An id assigned by another system (e.g. a Graph event id), which can be long."""


def _refuse_float(value: object) -> object:
    # A float has already lost the exact amount before we could see it.
    if isinstance(value, bool | float):
        raise ValueError("money must be a decimal string such as '390000.00', not a float")
    return value


def _two_places(value: Decimal) -> Decimal:
    # Always two decimals on the wire, so "390000" and "390000.00" serialise the same.
    return value.quantize(Decimal("0.01"))


Money = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    Field(ge=0, max_digits=14, decimal_places=2),
    AfterValidator(_two_places),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": MONEY_PATTERN,
            "description": "Non-negative amount in DKK as a decimal string, e.g. '390000.00'.",
        },
        mode="serialization",
    ),
]
"""An exact, non-negative DKK amount; JSON carries it as a string with two decimals."""
