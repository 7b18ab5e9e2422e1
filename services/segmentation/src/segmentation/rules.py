"""Plain checks and small values of the segmentation service: no I/O.

Each check fails with a `DomainError` (`crm_platform.errors`, shared by every service, so
refusals read and map the same everywhere) whose `code` names the field or state at fault, so
the API can point the caller at exactly what to fix.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from crm_contracts.patterns import is_id, is_mailbox, is_text
from crm_platform.errors import DomainError

COPENHAGEN: Final = ZoneInfo("Europe/Copenhagen")
NAME_MAX: Final = 200
ID_MAX: Final = 100
RESERVED_IDS: Final = frozenset({"import"})
NOTE_MAX: Final = 10_000
# The contract's Money: at most 12 digits before the point, exactly two after.
MONEY_MAX: Final = Decimal("999999999999.99")
CENT: Final = Decimal("0.01")
ONE_DAY: Final = timedelta(days=1)

_CVR = re.compile(r"^\d{8}$")


class PotentialSource(StrEnum):
    """Where an assessed potential came from."""

    MANUAL = "manual"
    DISCOVERY_MEETING = "discovery_meeting"
    IMPORT = "import"


class SegmentReason(StrEnum):
    """Why a customer's segment (or prioritized flag) changed."""

    REGISTERED = "registered"
    POTENTIAL_ASSESSED = "potential_assessed"
    AGREEMENT_STARTED = "agreement_started"
    AGREEMENT_ENDED = "agreement_ended"
    VALUE_PROGRAMME_STARTED = "value_programme_started"
    VALUE_PROGRAMME_ENDED = "value_programme_ended"
    POLICY_CHANGED = "policy_changed"


@dataclass(frozen=True, slots=True)
class Agreement:
    """An annual agreement. Both dates are inclusive, as on `crm.customers.v1`: the
    agreement is in force on every day d with `starts_on <= d <= ends_on`, and the customer
    falls back to the potential-based segment on `ends_on + 1 day`."""

    starts_on: date
    ends_on: date

    def active_on(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


@dataclass(frozen=True, slots=True)
class ValueProgramme:
    """Membership of the customer value programme ("kundeværdiprogram"): like an annual
    agreement it puts the customer in `annual_agreement` while it is in force, on every day d
    with `starts_on <= d` and, unless it is open-ended (`ends_on` None), `d <= ends_on`."""

    starts_on: date
    ends_on: date | None = None

    def active_on(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)

    def over_before(self, day: date) -> bool:
        """Its last day lies before `day`: it is neither in force nor upcoming."""
        return self.ends_on is not None and self.ends_on < day


def local_date(moment: datetime) -> date:
    """The calendar day in Europe/Copenhagen: segments and targets count Danish days."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes have no day in Copenhagen")
    return moment.astimezone(COPENHAGEN).date()


def require_name(value: str | None) -> str:
    name = (value or "").strip()
    if not name:
        raise DomainError("name", "a customer needs a name", details={"field": "name"})
    if len(name) > NAME_MAX:
        raise DomainError(
            "name",
            f"a customer name has at most {NAME_MAX} characters (got {len(name)})",
            details={"field": "name", "max": NAME_MAX},
        )
    if not is_text(name):
        raise DomainError(
            "name",
            "a customer name cannot hold control characters",
            details={"field": "name"},
        )
    return name


def require_id(value: str, field: str) -> str:
    """An id as on the wire: 1-100 of the characters `crm_contracts.patterns.ID_PATTERN` allows,
    and not a word the API's paths use (`/customers/import`)."""
    if not isinstance(value, str) or not is_id(value) or len(value) > ID_MAX:
        raise DomainError(
            field,
            f"{field} must be 1-{ID_MAX} ASCII letters, digits or . _ ~ : @ + - "
            "(not starting with a dot)",
            details={"field": field},
        )
    if value in RESERVED_IDS:
        raise DomainError(
            field, f"{field} {value!r} is reserved; choose another", details={"field": field}
        )
    return value


def require_owner(value: str, field: str = "owner") -> str:
    """A consultant, by e-mail address (the Outlook mailbox their activities go to)."""
    if not isinstance(value, str) or not is_mailbox(value) or len(value) > ID_MAX:
        raise DomainError(
            field,
            f"{field} must be an e-mail address of at most {ID_MAX} characters",
            details={"field": field},
        )
    return value


def require_cvr(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    cvr = value.strip()
    if not _CVR.match(cvr):
        raise DomainError("cvr", "a CVR number is exactly eight digits", details={"field": "cvr"})
    return cvr


def require_potential(value: object) -> Decimal:
    """An exact, non-negative DKK amount with at most two decimals (a float is refused:
    it has already lost the exact amount)."""
    if isinstance(value, bool | float):
        raise DomainError(
            "potential",
            "a potential is an exact amount such as '390000.00', not a float",
            details={"field": "amount"},
        )
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise DomainError(
            "potential", "a potential is an amount in DKK", details={"field": "amount"}
        )
    if amount < 0:
        raise DomainError(
            "potential",
            f"a potential cannot be negative (got {amount})",
            details={"field": "amount"},
        )
    if amount != amount.quantize(CENT) or amount > MONEY_MAX:
        raise DomainError(
            "potential",
            f"a potential has at most two decimals and is at most {MONEY_MAX}",
            details={"field": "amount"},
        )
    return amount.quantize(CENT)


def require_note(value: str | None) -> str | None:
    note = (value or "").strip()
    if len(note) > NOTE_MAX:
        raise DomainError(
            "note", f"a note has at most {NOTE_MAX} characters", details={"field": "note"}
        )
    if not is_text(note):
        raise DomainError(
            "note", "a note cannot hold control characters", details={"field": "note"}
        )
    return note or None


def require_aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DomainError(
            field, f"{field} needs a time zone (times are stored in UTC)", details={"field": field}
        )
    return moment


# -- finding customers by name -------------------------------------------------------------

# Letters NFKD does not take apart: folded to what a Danish keyboard without them types.
_LETTERS: Final = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "ł": "l",
                                 "þ": "th", "ı": "i"})  # fmt: skip
_WORD: Final = re.compile(r"[^\W_]+")
CVR_QUERY: Final = _CVR


def fold(text: str) -> str:
    """Lower case without accents: "KØBENHAVNS Blómster" -> "kobenhavns blomster"."""
    lowered = text.casefold().translate(_LETTERS)
    return "".join(
        c for c in unicodedata.normalize("NFKD", lowered) if not unicodedata.combining(c)
    )


def search_words(text: str) -> list[str]:
    """The folded words of a name or a query: runs of letters and digits."""
    return _WORD.findall(fold(text))


def search_text(name: str) -> str:
    """What the registry keeps to find a name by its words: the folded words, each after a
    space (" kobenhavns blomster aps"), so a word prefix `p` matches `LIKE '% p%'`."""
    return "".join(" " + word for word in search_words(name))
