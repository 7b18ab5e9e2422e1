"""Every case of every guide rule, as tables over the named functions of `activity.rules`.

The aggregate tests check that each command asks its rules; the integration and HTTP tests
keep one case per rule. The cases of a rule live here, and only here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from activity.rules import (
    DISCOVERY_FIELDS,
    CustomerEntry,
    DiscoveryProfile,
    adds_value,
    require_answered,
    require_booking_decides_type,
    require_changed_form,
    require_discovery_profile,
    require_future,
    require_future_activity,
    require_held,
    require_move_reason,
    require_new_time,
    require_outcome,
    require_proposal,
    require_same_customer,
    require_span,
    require_subject,
    require_valuable_note,
    require_visit_is_physical,
    says_only_no_answer,
)
from crm_contracts.enums import ActivityType, Channel, MoveReason
from crm_platform.errors import DomainError

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
VALUABLE = "Kunden åbner ny butik i Køge til maj, vil have tilbud på print"
FULL_PROFILE: dict[str, object] = {
    "business": "Bageri med tre butikker",
    "situation": "Annoncerer kun på Facebook",
    "challenges": "Få kunder om eftermiddagen",
    "goals_and_plans": "Ny butik i Køge i maj",
    "advertising_needs": "Lokal synlighed før åbningen",
    "potential_dkk": "150000",
    "competitors": "Lagkagehuset",
    "strategy": "Kvalitet frem for pris",
    "unique_traits": "Surdej fra egen mølle",
}
T = ActivityType
C = Channel


def refusal(check: object, *args: object) -> DomainError:
    assert callable(check)
    with pytest.raises(DomainError) as refused:
        check(*args)
    return refused.value


# --------------------------------------------------------------------------- R4: adds value

VALUE_TABLE = [
    # (note, adds value) — the judgement R4 makes of a contact-like note
    ("Budget 2027: 80.000 kr", True),
    ("Aftalt møde 12/3", True),
    (VALUABLE, True),
    ("Ringede: ønsker mailkampagne i oktober", True),
    ("Ringede. " + VALUABLE + ". Ok.", True),
    ("Ingen svar først, men kunden ringede tilbage og bestilte 4 annoncer", True),
    ("Ønsker tilbud på avisannoncer før sommerferien", True),
    ("Vil øge budgettet med 10 %", True),
    ("asdfasdf asdfasdf", False),
    ("asdf jklø qwer", False),
    ("sdfsdf sdfsdf sdf", False),
    ("hahaha hahaha", False),
    ("ingen svar", False),
    ("INGEN SVAR!!!", False),
    ("ok", False),
    ("OK ok Ok okay", False),
    ("ringede - ingen svar - ringer igen", False),
    ("Ringede 2 gange, ingen svar", False),
    ("Ringede kl. 10, ingen svar", False),
    ("Ingen svar, prøver igen på mandag", False),
    ("Called, no answer, follow up", False),
    ("Ringede, ingen svar. Ringede: ingen svar. Ok. Lagt besked. Mail sendt. " * 3, False),
    ("...................... !!!!! ??????", False),
    ("1234567890 123456789", False),
    ("", False),
]


@pytest.mark.parametrize(("note", "valuable"), VALUE_TABLE)
def test_R4_adds_value(note: str, valuable: bool) -> None:
    assert adds_value(note) is valuable


def test_R4_stock_phrases_are_removed_as_whole_words_only() -> None:
    # "ok" inside "oktober", "mail" inside "mailkampagne" are real words, not stock phrases.
    assert adds_value("mailkampagne oktober budget")
    assert not adds_value("mail ok budget")


# --------------------------------------------------------------------------- R1: no answer

NO_ANSWER_TABLE = [
    # (note, only says nobody answered)
    ("ingen svar", True),
    ("Ringede, ingen svar", True),
    ("Ingen svar, lagt besked på telefonsvarer", True),
    ("Svarede ikke. Prøver igen i morgen", True),
    ("No answer", True),
    ("Ingen svar først, men kunden ringede tilbage og bestilte 4 annoncer", False),
    (VALUABLE, False),
    ("ok", False),  # says nothing, but not that nobody answered: R6/R4 judge it
]


@pytest.mark.parametrize(("note", "no_answer"), NO_ANSWER_TABLE)
def test_R1_says_only_no_answer(note: str, no_answer: bool) -> None:
    assert says_only_no_answer(note) is no_answer


ANSWERED_TABLE = [
    # (type, channel, refused with R1) for the note "Ringede, ingen svar"
    (T.CONTACT, C.PHONE, True),
    (T.CONTACT, C.EMAIL, True),
    (T.CONTACT, C.PHYSICAL, True),
    (T.SALES_MEETING, C.PHONE, True),
    (T.STATUS_MEETING, C.VIDEO, True),
    (T.STATUS_MEETING, C.PHYSICAL, False),
    (T.SALES_MEETING, C.EMAIL, False),
]


@pytest.mark.parametrize(("type_", "channel", "refused"), ANSWERED_TABLE)
def test_R1_an_unanswered_contact_or_call_is_moved_not_completed(
    type_: ActivityType, channel: Channel, refused: bool
) -> None:
    if refused:
        error = refusal(require_answered, type_, channel, "Ringede, ingen svar")
        assert (error.rule, error.field, error.kind) == ("R1", "note", "conflict")
        assert "move" in error.message
    else:
        require_answered(type_, channel, "Ringede, ingen svar")
    require_answered(type_, channel, VALUABLE)


@pytest.mark.parametrize("reason", ["", "because", "NO_ANSWER", None])
def test_R1_a_move_gives_one_of_the_guide_reasons(reason: str) -> None:
    error = refusal(require_move_reason, reason)
    assert (error.rule, error.field) == ("R1", "reason")


@pytest.mark.parametrize("reason", list(MoveReason))
def test_R1_every_guide_reason_is_accepted(reason: MoveReason) -> None:
    assert require_move_reason(reason.value) is reason


def test_R1_a_move_goes_to_another_time() -> None:
    span = (NOW, NOW + HOUR)
    error = refusal(require_new_time, span, span)
    assert (error.rule, error.field) == ("R1", "starts_at")
    require_new_time(span, (NOW, NOW + 2 * HOUR))  # a new end is a new time


# --------------------------------------------------------------------------- R2: retype

FORM_TABLE = [
    # (current, new, refused)
    ((T.CONTACT, C.PHONE), (T.CONTACT, C.PHONE), True),
    ((T.CONTACT, C.PHONE), (T.SALES_MEETING, C.PHONE), False),
    ((T.CONTACT, C.PHONE), (T.CONTACT, C.VIDEO), False),
    ((T.STATUS_MEETING, C.PHYSICAL), (T.PROPOSAL_MEETING, C.VIDEO), False),
]


@pytest.mark.parametrize(("current", "new", "refused"), FORM_TABLE)
def test_R2_a_retype_changes_the_type_or_the_channel(
    current: tuple[ActivityType, Channel], new: tuple[ActivityType, Channel], refused: bool
) -> None:
    if refused:
        error = refusal(require_changed_form, current, new)
        assert (error.rule, error.field) == ("R2", "type")
    else:
        require_changed_form(current, new)


# --------------------------------------------------------------------------- R3: booking

MEETINGS = [T.DISCOVERY_MEETING, T.PROPOSAL_MEETING, T.STATUS_MEETING, T.SALES_MEETING]
BOOKING_TABLE = [
    # (type, channel, booked, refused field or None)
    *[(t, C.PHYSICAL, True, None) for t in MEETINGS],
    *[(t, C.PHYSICAL, False, "type") for t in [*MEETINGS, T.CONTACT]],
    (T.UNANNOUNCED_VISIT, C.PHYSICAL, False, None),
    (T.UNANNOUNCED_VISIT, C.PHYSICAL, True, "booked"),
    *[(T.UNANNOUNCED_VISIT, c, b, "channel") for c in (C.PHONE, C.VIDEO, C.EMAIL) for b in (0, 1)],
    *[(t, c, b, None) for t in [*MEETINGS, T.CONTACT] for c in (C.PHONE, C.EMAIL) for b in (0, 1)],
]


@pytest.mark.parametrize(("type_", "channel", "booked", "field"), BOOKING_TABLE)
def test_R3_booking_decides_what_a_registered_activity_is(
    type_: ActivityType, channel: Channel, booked: bool, field: str | None
) -> None:
    if field is None:
        require_booking_decides_type(type_, channel, bool(booked))
    else:
        error = refusal(require_booking_decides_type, type_, channel, bool(booked))
        assert (error.rule, error.field) == ("R3", field)


@pytest.mark.parametrize("channel", list(Channel))
def test_R3_an_unannounced_visit_is_physical(channel: Channel) -> None:
    if channel is Channel.PHYSICAL:
        require_visit_is_physical(T.UNANNOUNCED_VISIT, channel)
    else:
        error = refusal(require_visit_is_physical, T.UNANNOUNCED_VISIT, channel)
        assert (error.rule, error.field) == ("R3", "channel")
    require_visit_is_physical(T.SALES_MEETING, channel)


# --------------------------------------------------------------------------- R4: registration

VALUABLE_NOTE_TABLE = [
    # (channel, note, refused) — physical activities are always registered (R4)
    (C.PHYSICAL, "ok", False),
    (C.PHYSICAL, "ingen svar", False),
    (C.PHYSICAL, "   ", True),
    (C.PHONE, "Ringede, ingen svar, ok", True),
    (C.EMAIL, "asdfasdf asdfasdf", True),
    (C.VIDEO, "", True),
    (C.PHONE, "Budget 2027: 80.000 kr", False),
    (C.EMAIL, VALUABLE, False),
]


@pytest.mark.parametrize(("channel", "note", "refused"), VALUABLE_NOTE_TABLE)
def test_R4_a_contact_like_registration_needs_a_note_that_adds_value(
    channel: Channel, note: str, refused: bool
) -> None:
    if refused:
        error = refusal(require_valuable_note, T.CONTACT, channel, note)
        assert (error.rule, error.field) == ("R4", "note")
    else:
        assert require_valuable_note(T.CONTACT, channel, f"  {note} ") == note.strip()


# --------------------------------------------------------------------------- R5: planning


@pytest.mark.parametrize("subject", [None, "", "   ", "\n\t"])
def test_R5_the_subject_says_what_it_is_about(subject: str | None) -> None:
    error = refusal(require_subject, subject)
    assert (error.rule, error.field) == ("R5", "subject")


def test_R5_the_subject_is_stripped() -> None:
    assert require_subject("  Forårskampagne  ") == "Forårskampagne"


@pytest.mark.parametrize(("minutes", "refused"), [(-30, True), (0, True), (1, False)])
def test_R5_an_activity_ends_after_it_starts(minutes: int, refused: bool) -> None:
    ends = NOW + timedelta(minutes=minutes)
    if refused:
        error = refusal(require_span, NOW, ends)
        assert (error.rule, error.field) == ("R5", "ends_at")
    else:
        require_span(NOW, ends)


@pytest.mark.parametrize("rule", ["R5", "R1"])
@pytest.mark.parametrize(
    ("offset", "refused"),
    [
        (timedelta(days=-3), True),
        (timedelta(seconds=-1), True),
        (timedelta(0), True),
        (timedelta(seconds=1), False),
    ],
)
def test_R5_R1_planned_and_moved_to_the_future(rule: str, offset: timedelta, refused: bool) -> None:
    if refused:
        error = refusal(require_future, NOW + offset, NOW, rule, "planning")
        assert (error.rule, error.field) == (rule, "starts_at")
    else:
        require_future(NOW + offset, NOW, rule, "planning")


# --------------------------------------------------------------------------- R6: completion

OUTCOME_TABLE = [
    # (note, next_step, refused field)
    ("Vil have tilbud", "Send tilbud", None),
    ("", "Send tilbud", "note"),
    ("   ", "Send tilbud", "note"),
    ("Vil have tilbud", "", "next_step"),
    ("Vil have tilbud", " \n", "next_step"),
    (None, None, "note"),
]


@pytest.mark.parametrize(("note", "next_step", "field"), OUTCOME_TABLE)
def test_R6_the_note_and_the_next_step(
    note: str | None, next_step: str | None, field: str | None
) -> None:
    if field is None:
        assert require_outcome(f" {note} ", f"{next_step}\n") == (note, next_step)
    else:
        error = refusal(require_outcome, note, next_step)
        assert (error.rule, error.field) == ("R6", field)


PLANNED_AT = NOW - timedelta(days=7)
HELD_TABLE = [
    # (held_at, planned_at, refused)
    (NOW, None, False),
    (NOW - timedelta(days=400), None, False),  # registered: no plan to be after
    (NOW + timedelta(seconds=1), None, True),
    (NOW + timedelta(days=7), PLANNED_AT, True),
    (PLANNED_AT, PLANNED_AT, False),
    (PLANNED_AT - timedelta(seconds=1), PLANNED_AT, True),
    (NOW - timedelta(days=1), PLANNED_AT, False),
]


@pytest.mark.parametrize(("held_at", "planned_at", "refused"), HELD_TABLE)
def test_R6_held_between_planning_and_now(
    held_at: datetime, planned_at: datetime | None, refused: bool
) -> None:
    if refused:
        error = refusal(require_held, held_at, NOW, planned_at)
        assert (error.rule, error.field) == ("R6", "held_at")
    else:
        require_held(held_at, NOW, planned_at)


# --------------------------------------------------------------------------- R7: workflow


def test_R7_the_next_activity_is_on_the_same_customer() -> None:
    require_same_customer("c-1", "c-1")
    error = refusal(require_same_customer, "c-2", "c-1")
    assert (error.rule, error.field) == ("R7", "next_activity.customer_id")


# --------------------------------------------------------------------------- R8: future activity

A_CUSTOMER = CustomerEntry("c-1", "Bageriet", "A", prioritized=True)
D_CUSTOMER = CustomerEntry("c-2", "Kiosken", "D", prioritized=False)
FUTURE_TABLE = [
    # (customer, has a future activity, refused)
    (A_CUSTOMER, False, True),
    (A_CUSTOMER, True, False),
    (CustomerEntry("c-3", "Avisen", "annual_agreement", prioritized=True), False, True),
    (CustomerEntry("c-4", "Ny", "a_new_segment", prioritized=True), False, True),
    (D_CUSTOMER, False, False),
    (None, False, False),  # not (yet) in the registry: nothing to keep
]


@pytest.mark.parametrize(("customer", "has_future", "refused"), FUTURE_TABLE)
def test_R8_a_prioritized_customer_keeps_a_future_activity(
    customer: CustomerEntry | None, has_future: bool, refused: bool
) -> None:
    if refused:
        error = refusal(require_future_activity, customer, has_future, "completed")
        assert (error.rule, error.field, error.kind) == ("R8", "next_activity", "conflict")
        assert customer is not None
        assert error.details["customer_id"] == customer.customer_id
        assert customer.name in error.message
    else:
        require_future_activity(customer, has_future, "completed")


def test_R8_names_the_segment_as_consultants_know_it() -> None:
    error = refusal(require_future_activity, A_CUSTOMER, False, "cancelled")
    assert "segment A" in error.message
    assert "cannot be cancelled" in error.message


# --------------------------------------------------------------------------- R9: proposal


@pytest.mark.parametrize("type_", list(ActivityType))
@pytest.mark.parametrize("attached", [True, False])
def test_R9_only_a_proposal_meeting_needs_its_proposal(type_: ActivityType, attached: bool) -> None:
    if type_ is T.PROPOSAL_MEETING and not attached:
        error = refusal(require_proposal, type_, attached)
        assert (error.rule, error.field, error.kind) == ("R9", "attachments", "conflict")
    else:
        require_proposal(type_, attached)


# --------------------------------------------------------------------------- R10: profile


def test_R10_a_full_profile_is_accepted_with_an_exact_potential() -> None:
    profile = DiscoveryProfile.from_mapping(FULL_PROFILE)
    assert profile.potential_dkk == Decimal("150000")
    assert profile.as_dict() == {f: str(FULL_PROFILE[f]) for f in DISCOVERY_FIELDS}


def test_R10_the_profile_has_the_nine_fields_of_the_guide() -> None:
    assert DISCOVERY_FIELDS == (
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


MISSING_TABLE = [
    ({}, list(DISCOVERY_FIELDS)),
    ({**FULL_PROFILE, "competitors": None}, ["competitors"]),
    ({**FULL_PROFILE, "strategy": "   "}, ["strategy"]),
    ({**FULL_PROFILE, "potential_dkk": None, "business": ""}, ["business", "potential_dkk"]),
]


@pytest.mark.parametrize(("data", "missing"), MISSING_TABLE)
def test_R10_missing_and_blank_fields_are_named(
    data: dict[str, object], missing: list[str]
) -> None:
    error = refusal(DiscoveryProfile.from_mapping, data)
    assert (error.rule, error.field) == ("R10", "discovery_profile")
    assert error.details["missing"] == missing


@pytest.mark.parametrize("potential", ["-1", "mange penge", "NaN", "Infinity", "1,5 mio"])
def test_R10_the_potential_is_an_amount_in_dkk(potential: str) -> None:
    error = refusal(DiscoveryProfile.from_mapping, {**FULL_PROFILE, "potential_dkk": potential})
    assert (error.rule, error.field) == ("R10", "discovery_profile.potential_dkk")


@pytest.mark.parametrize("type_", list(ActivityType))
def test_R10_only_a_discovery_meeting_needs_the_profile(type_: ActivityType) -> None:
    if type_ is T.DISCOVERY_MEETING:
        error = refusal(require_discovery_profile, type_, None)
        assert error.details["missing"] == list(DISCOVERY_FIELDS)
    else:
        assert require_discovery_profile(type_, None) is None
    profile = DiscoveryProfile.from_mapping(FULL_PROFILE)
    assert require_discovery_profile(type_, profile) is profile
