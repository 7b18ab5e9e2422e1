"""The sales guide's rules as plain checks, each failing with the rule it cites.

Kept apart from the aggregates so the API documentation and the tests can name exactly what
a rule demands (e.g. what makes a note "add value" under R4).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from crm_contracts.enums import ActivityType, Channel
from crm_platform.errors import DomainError as DomainError

# R4: phrases that say nothing about the customer. A note made of nothing else is refused.
STOCK_PHRASES: tuple[str, ...] = (
    "ingen svar",
    "intet svar",
    "svarer ikke",
    "ikke truffet",
    "ringede",
    "ringet",
    "ring tilbage",
    "ringer igen",
    "opkald",
    "tlf",
    "telefon",
    "mail sendt",
    "sendt mail",
    "sendte mail",
    "mail",
    "kontakt",
    "kontaktet",
    "fulgt op",
    "opfølgning",
    "intet nyt",
    "ok",
    "okay",
    "snakket med kunden",
    "talt med kunden",
    "snak",
    "besked",
    "lagt besked",
    "no answer",
    "called",
    "call",
    "follow up",
    "followed up",
)
VALUABLE_NOTE_MIN_CHARS = 20

_PHRASE_PATTERN = re.compile(
    r"\b(?:" + "|".join(re.escape(p) for p in sorted(STOCK_PHRASES, key=len, reverse=True)) + r")\b"
)


def substance(note: str) -> str:
    """What is left of a note once stock phrases, punctuation and spacing are taken out."""
    text = unicodedata.normalize("NFKC", note).casefold()
    text = _PHRASE_PATTERN.sub(" ", text)
    return "".join(ch for ch in text if ch.isalnum())


def adds_value(note: str) -> bool:
    """R4: at least 20 letters or digits remain once stock phrases are removed."""
    return len(substance(note)) >= VALUABLE_NOTE_MIN_CHARS


def require_text(value: str | None, code: str, what: str) -> str:
    if value is None or not value.strip():
        raise DomainError(code, f"{code}: {what} is required and must not be blank")
    return value.strip()


def require_span(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise DomainError(
            "ends_at", "ends_at must be after starts_at", details={"field": "ends_at"}
        )


def require_future(starts_at: datetime, now: datetime, code: str, action: str) -> None:
    if starts_at <= now:
        raise DomainError(
            code,
            f"{code}: {action} needs a time in the future "
            f"(got {starts_at.isoformat()}, now is {now.isoformat()})",
            details={"field": "starts_at"},
        )


def require_visit_is_physical(type_: ActivityType, channel: Channel) -> None:
    if type_ is ActivityType.UNANNOUNCED_VISIT and channel is not Channel.PHYSICAL:
        raise DomainError(
            "R3",
            "R3: an unannounced visit is held physically "
            f"(channel 'physical'), not '{channel.value}'",
        )


def check_registration(type_: ActivityType, channel: Channel, note: str) -> None:
    """R3 and R4 for an activity registered after the fact."""
    if channel is Channel.PHYSICAL and type_ is not ActivityType.UNANNOUNCED_VISIT:
        raise DomainError(
            "R3",
            "R3: a physical activity that was not booked is an unannounced visit; "
            f"register it with type 'unannounced_visit', not '{type_.value}' "
            "(plan booked meetings instead)",
        )
    require_visit_is_physical(type_, channel)
    if channel is not Channel.PHYSICAL and not adds_value(note):
        raise DomainError(
            "R4",
            "R4: an unplanned contact is registered only with a note that adds value: "
            f"at least {VALUABLE_NOTE_MIN_CHARS} letters or digits besides stock phrases "
            "such as 'ringede', 'ingen svar' or 'ok'",
            details={"field": "note"},
        )


DISCOVERY_FIELDS: tuple[str, ...] = (
    "business",
    "situation",
    "challenges",
    "goals_and_plans",
    "advertising_needs",
    "potential_dkk",
    "competitors",
    "strategy",
    "unique_traits",
)


@dataclass(frozen=True, slots=True)
class DiscoveryProfile:
    """The customer's 360° discovery ("kundeafdækning"), every field filled in (R10)."""

    business: str
    situation: str
    challenges: str
    goals_and_plans: str
    advertising_needs: str
    potential_dkk: Decimal
    competitors: str
    strategy: str
    unique_traits: str

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> DiscoveryProfile:
        missing = [
            f
            for f in DISCOVERY_FIELDS
            if data.get(f) is None
            or (isinstance(data.get(f), str) and not str(data.get(f)).strip())
        ]
        if missing:
            raise DomainError(
                "R10",
                "R10: a discovery meeting is completed only with the "
                f"discovery profile filled in; missing: {', '.join(missing)}",
                details={"missing": missing},
            )
        try:
            potential = Decimal(str(data["potential_dkk"]))
        except InvalidOperation:
            potential = Decimal("NaN")
        if not potential.is_finite() or potential < 0:
            raise DomainError(
                "R10",
                "R10: potential_dkk must be an amount in DKK, not negative",
                details={"field": "discovery_profile.potential_dkk"},
            )
        texts = {f: str(data[f]).strip() for f in DISCOVERY_FIELDS if f != "potential_dkk"}
        return cls(potential_dkk=potential, **texts)

    def as_dict(self) -> dict[str, str]:
        return {f: str(getattr(self, f)) for f in DISCOVERY_FIELDS}
