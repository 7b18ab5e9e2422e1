"""The sales guide's rules R1–R10, each one named function that refuses with the rule it cites.

The aggregates (domain.py) call these before they trigger an event; the application only
loads, calls and saves. Each refusal carries the rule (`code="R9"`) apart from the field to
change (`field="attachments"`), so a client can show both. Where a rule needs a judgement
(what makes a note "add value"), the judgement is a function of its own with its cases in a
table test.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from crm_contracts.enums import ActivityType, Channel, MoveReason, Segment
from crm_platform.errors import DomainError

# -- judgements the rules use -------------------------------------------------------------

# Phrases that only say the customer did not pick up (R1).
NO_ANSWER_PHRASES: tuple[str, ...] = (
    "ingen svar",
    "intet svar",
    "ikke svar",
    "svarer ikke",
    "svarede ikke",
    "svarer ikke telefonen",
    "ikke truffet",
    "ikke fat i",
    "fik ikke fat",
    "tog ikke telefonen",
    "tog den ikke",
    "telefonsvarer",
    "voicemail",
    "optaget",
    "no answer",
    "no reply",
    "not answered",
)
# Phrases that say nothing about the customer (R4). A note made of nothing else is refused.
STOCK_PHRASES: tuple[str, ...] = (
    *NO_ANSWER_PHRASES,
    "ringede",
    "ringet",
    "ring tilbage",
    "ringer igen",
    "prøver igen",
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
    "called",
    "call",
    "follow up",
    "followed up",
)
# Words that carry no fact about the customer on their own (R4): when, how often, glue.
FILLER_WORDS: frozenset[str] = frozenset(
    " ".join(
        (
            "i og på til med men er var har havde jeg vi han hun de den det der en et om at",
            "af for fra som så nu kan vil skal igen gang gange kl klokken min minut minutter",
            "time timer dag dage uge uger idag imorgen morgen formiddag eftermiddag aften",
            "mandag tirsdag onsdag torsdag fredag lørdag søndag kunde kunden",
            "the and to at on in of for with again",
        )
    ).split()
)
# R4: a note adds value with a fact (a number beside a word) or a few real words.
VALUABLE_NOTE_MIN_WORDS = 3
VALUABLE_NOTE_MIN_LETTERS = 15
_KEYBOARD_ROWS = ("qwertyuiopå", "asdfghjklæø", "zxcvbnm", "1234567890")
_VOWELS = frozenset("aeiouyæøåéèêáàäöü")


VALUE_TEST = (
    "besides stock phrases such as 'ringede', 'ingen svar' or 'ok', it states a fact (a "
    "number beside a word, e.g. 'Budget 2027: 80.000 kr') or says something in at least "
    f"{VALUABLE_NOTE_MIN_WORDS} distinct real words of {VALUABLE_NOTE_MIN_LETTERS} letters "
    "together"
)


def _phrases(phrases: tuple[str, ...]) -> re.Pattern[str]:
    longest_first = sorted(set(phrases), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in longest_first) + r")\b")


_STOCK = _phrases(STOCK_PHRASES)
_NO_ANSWER = _phrases(NO_ANSWER_PHRASES)
_TOKEN = re.compile(r"[^\W_]+")


def _folded(note: str) -> str:
    return unicodedata.normalize("NFKC", note).casefold()


def substance(note: str) -> list[str]:
    """The words and numbers of a note once stock phrases and punctuation are taken out."""
    return _TOKEN.findall(_STOCK.sub(" ", _folded(note)))


def _is_real_word(token: str) -> bool:
    """A word, not filler and not keyboard mash ("asdf", "asdfasdf", "sdfgh")."""
    if len(token) < 3 or token in FILLER_WORDS or not any(ch.isalpha() for ch in token):
        return False
    if not _VOWELS.intersection(token):
        return False
    if any(token in row for row in _KEYBOARD_ROWS):
        return False
    # A token made of one shorter unit repeated ("asdfasdf", "hahaha") is mash.
    return not any(
        len(token) % size == 0 and token == token[:size] * (len(token) // size)
        for size in range(1, len(token) // 2 + 1)
    )


def adds_value(note: str) -> bool:
    """R4's test of a note: besides stock phrases it states a fact (a number beside a real
    word: "Budget 2027: 80.000 kr") or says something in at least three distinct real words
    of fifteen letters together. Stock phrases, filler and keyboard mash ("asdfasdf
    asdfasdf") do not count; the cases are in the table test of this function."""
    tokens = substance(note)
    words = {t for t in tokens if _is_real_word(t)}
    if words and any(t.isdigit() for t in tokens):
        return True
    return len(words) >= VALUABLE_NOTE_MIN_WORDS and sum(map(len, words)) >= (
        VALUABLE_NOTE_MIN_LETTERS
    )


def says_only_no_answer(note: str) -> bool:
    """R1's test of a completion note: it says the customer did not answer, and nothing more
    of value (a note that also reports what was agreed afterwards is a real completion)."""
    return bool(_NO_ANSWER.search(_folded(note))) and not adds_value(note)


def _required(value: str | None, rule: str, field: str, what: str) -> str:
    if value is None or not value.strip():
        raise DomainError(rule, f"{rule}: {what} is required and must not be blank", field=field)
    return value.strip()


# -- R1 no answer → move ------------------------------------------------------------------


def require_answered(type_: ActivityType, channel: Channel, note: str) -> None:
    """R1: a contact, call or video meeting the customer did not answer is moved, not completed."""
    remote = type_ is ActivityType.CONTACT or channel in (Channel.PHONE, Channel.VIDEO)
    if remote and says_only_no_answer(note):
        raise DomainError(
            "R1",
            "R1: the note only says the customer did not answer; an unanswered activity is "
            "not completed but moved to a new time (POST /activities/{id}/move with reason "
            "'no_answer')",
            field="note",
            kind="conflict",
        )


def require_move_reason(reason: str) -> MoveReason:
    """R1: a move records why, one of the guide's reasons."""
    if reason not in set(MoveReason):
        raise DomainError(
            "R1",
            "R1: a move records its reason, one of " + ", ".join(r.value for r in MoveReason),
            field="reason",
        )
    return MoveReason(reason)


def require_new_time(current: tuple[datetime, datetime], new: tuple[datetime, datetime]) -> None:
    """R1: a move goes to another time; the history keeps every earlier one."""
    if new == current:
        raise DomainError(
            "R1", "R1: a move needs a new time; this is the current one", field="starts_at"
        )


# -- R2 changed form → retype -------------------------------------------------------------


def require_changed_form(
    current: tuple[ActivityType, Channel], new: tuple[ActivityType, Channel]
) -> None:
    """R2: a retype changes the type or the channel; the history keeps the old ones."""
    if new == current:
        raise DomainError(
            "R2",
            "R2: a retype needs another type or channel than the "
            f"current '{current[0].value}' / '{current[1].value}'",
            field="type",
        )


# -- R3 no booking → unannounced visit ----------------------------------------------------


def require_visit_is_physical(type_: ActivityType, channel: Channel) -> None:
    """R3: an unannounced visit is a visit, held physically."""
    if type_ is ActivityType.UNANNOUNCED_VISIT and channel is not Channel.PHYSICAL:
        raise DomainError(
            "R3",
            "R3: an unannounced visit is held physically "
            f"(channel 'physical'), not '{channel.value}'",
            field="channel",
        )


def require_booking_decides_type(type_: ActivityType, channel: Channel, booked: bool) -> None:
    """R3 for a physical activity registered after the fact: booked with the customer, it is
    what it was (any meeting type); not booked, it is an unannounced visit."""
    require_visit_is_physical(type_, channel)
    if type_ is ActivityType.UNANNOUNCED_VISIT and booked:
        raise DomainError(
            "R3",
            "R3: an unannounced visit is one not booked with the customer; a booked visit is "
            "registered as the meeting it was (e.g. 'status_meeting')",
            field="booked",
        )
    if channel is Channel.PHYSICAL and not booked and type_ is not ActivityType.UNANNOUNCED_VISIT:
        raise DomainError(
            "R3",
            "R3: a physical activity not booked with the customer is an unannounced visit; "
            f"register it with type 'unannounced_visit', or with booked true if the "
            f"'{type_.value}' was agreed with the customer beforehand",
            field="type",
        )


# -- R4 unplanned activities --------------------------------------------------------------


def require_valuable_note(type_: ActivityType, channel: Channel, note: str) -> str:
    """R4: a contact-like activity registered after the fact needs a note that adds value;
    a physical one is always registered, with a note (R6)."""
    note = _required(note, "R4", "note", "a note")
    if channel is not Channel.PHYSICAL and not adds_value(note):
        raise DomainError(
            "R4",
            "R4: a contact-like activity is registered after the fact only with a note that "
            f"adds value: {VALUE_TEST}",
            field="note",
        )
    return note


# -- R5 planning --------------------------------------------------------------------------


def require_subject(subject: str | None) -> str:
    """R5: the subject says what the activity is about."""
    return _required(subject, "R5", "subject", "a subject saying what the activity is about")


def require_span(starts_at: datetime, ends_at: datetime) -> None:
    """R5: an activity ends after it starts."""
    if ends_at <= starts_at:
        raise DomainError("R5", "R5: ends_at must be after starts_at", field="ends_at")


def require_future(starts_at: datetime, now: datetime, rule: str, action: str) -> None:
    """An activity is planned (R5) or moved (R1) to a time still to come."""
    if starts_at <= now:
        raise DomainError(
            rule,
            f"{rule}: {action} needs a time in the future "
            f"(got {starts_at.isoformat()}, now is {now.isoformat()})",
            field="starts_at",
        )


# -- R6 completion ------------------------------------------------------------------------


def require_outcome(note: str | None, next_step: str | None) -> tuple[str, str]:
    """R6: the note holds the most important information and the next step is stated."""
    return (
        _required(note, "R6", "note", "a note with the most important information"),
        _required(next_step, "R6", "next_step", "the next step"),
    )


def require_held(held_at: datetime, now: datetime, planned_at: datetime | None = None) -> None:
    """R6: an activity is completed once held; when is recorded, never in the future and, for
    a planned activity, not before it was planned."""
    if held_at > now:
        raise DomainError(
            "R6",
            f"R6: held_at {held_at.isoformat()} is in the future; an activity is completed "
            "or registered once it has been held (move or plan it instead)",
            field="held_at",
        )
    if planned_at is not None and held_at < planned_at:
        raise DomainError(
            "R6",
            f"R6: held_at {held_at.isoformat()} is before the activity was planned "
            f"({planned_at.isoformat()}); register what happened before as its own activity",
            field="held_at",
        )


# -- R7 workflow --------------------------------------------------------------------------


def require_same_customer(next_customer_id: str, customer_id: str) -> None:
    """R7: the next activity is planned on the same customer, in the same save."""
    if next_customer_id != customer_id:
        raise DomainError(
            "R7",
            f"R7: the next activity is planned on the same customer ({customer_id})",
            field="next_activity.customer_id",
        )


# -- R8 prioritized customers always have a future activity -------------------------------


@dataclass(frozen=True, slots=True)
class CustomerEntry:
    """What the rules know of a customer: from the registry, kept by the activity service."""

    customer_id: str
    name: str
    segment: str
    prioritized: bool
    owner: str | None = None


def lacks_future_activity(customer: CustomerEntry | None, has_future_activity: bool) -> bool:
    """R8's judgement: a prioritized customer (its segment today) with no future activity.
    An overdue planned activity is not a future one."""
    return customer is not None and customer.prioritized and not has_future_activity


def require_future_activity(
    customer: CustomerEntry | None, has_future_activity: bool, action: str
) -> None:
    """R8: a command never leaves a prioritized customer without a future activity."""
    if not lacks_future_activity(customer, has_future_activity):
        return
    assert customer is not None
    raise DomainError(
        "R8",
        f"R8: {customer.name} ({customer.customer_id}) is a prioritized customer "
        f"(segment {segment_label(customer.segment)}) and must always have a future activity; "
        f"this activity cannot be {action} without planning the next one (next_activity)",
        field="next_activity",
        kind="conflict",
        details={
            "customer_id": customer.customer_id,
            "customer_name": customer.name,
            "segment": customer.segment,
        },
    )


def segment_label(segment: str) -> str:
    """The Danish label consultants know the segment by; the raw value if it is a newer one."""
    try:
        return Segment(segment).label
    except ValueError:
        return segment


# -- R9 proposal meetings -----------------------------------------------------------------


def require_proposal(type_: ActivityType, proposal_attached: bool) -> None:
    """R9: a proposal meeting is completed only with its written, binding proposal attached."""
    if type_ is ActivityType.PROPOSAL_MEETING and not proposal_attached:
        raise DomainError(
            "R9",
            "R9: a proposal meeting is completed only with its written, binding proposal "
            "attached (an attachment of kind 'proposal')",
            field="attachments",
            kind="conflict",
        )


# -- R10 discovery meetings ---------------------------------------------------------------

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
        missing = [f for f in DISCOVERY_FIELDS if _blank(data.get(f))]
        if missing:
            raise DomainError(
                "R10",
                "R10: a discovery meeting is completed only with the "
                f"discovery profile filled in; missing: {', '.join(missing)}",
                field="discovery_profile",
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
                field="discovery_profile.potential_dkk",
            )
        texts = {f: str(data[f]).strip() for f in DISCOVERY_FIELDS if f != "potential_dkk"}
        return cls(potential_dkk=potential, **texts)

    def as_dict(self) -> dict[str, str]:
        return {f: str(getattr(self, f)) for f in DISCOVERY_FIELDS}


def require_discovery_profile(
    type_: ActivityType, profile: DiscoveryProfile | None
) -> DiscoveryProfile | None:
    """R10: a discovery meeting is completed only with the discovery profile filled in."""
    if type_ is ActivityType.DISCOVERY_MEETING and profile is None:
        DiscoveryProfile.from_mapping({})  # refuses, naming every missing field
    return profile


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
