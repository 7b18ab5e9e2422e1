"""The rule checks of `activity.rules`, each test named for the rule it pins down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from activity.rules import (
    DISCOVERY_FIELDS,
    VALUABLE_NOTE_MIN_CHARS,
    DiscoveryProfile,
    DomainError,
    adds_value,
    check_registration,
    require_future,
    require_span,
    require_text,
    require_visit_is_physical,
    substance,
)
from crm_contracts.enums import ActivityType, Channel

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
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

# --------------------------------------------------------------------------- R4: notes


def test_R4_the_threshold_is_twenty_letters_or_digits() -> None:
    assert VALUABLE_NOTE_MIN_CHARS == 20


def test_R4_a_note_with_exactly_20_characters_of_substance_adds_value() -> None:
    note = "abcde fghij, klmno - pqrst!"
    assert substance(note) == "abcdefghijklmnopqrst"
    assert adds_value(note)


def test_R4_a_note_with_19_characters_of_substance_does_not_add_value() -> None:
    note = "abcde fghij, klmno - pqrs!"
    assert len(substance(note)) == 19
    assert not adds_value(note)


def test_R4_danish_letters_count_as_substance() -> None:
    note = "æøå ÆØÅ æøå ÆØÅ æøå ÆØÅ æø"  # 20 Danish letters
    assert len(substance(note)) == 20
    assert adds_value(note)
    assert not adds_value(note[:-1])


def test_R4_digits_count_as_substance() -> None:
    assert adds_value("Budget 2026: 45000 kr. 1234567")
    assert not adds_value("1234567890 123456789")  # 19 digits


def test_R4_a_long_note_of_only_stock_phrases_does_not_add_value() -> None:
    note = "Ringede, ingen svar. Ringede: ingen svar. Ok. Lagt besked. Mail sendt. " * 3
    assert len(note) > 100
    assert substance(note) == ""
    assert not adds_value(note)


@pytest.mark.parametrize(
    "note",
    [
        "ringede",
        "Ingen svar",
        "INGEN SVAR!!!",
        "ok",
        "OK ok Ok okay",
        "ringede - ingen svar - ringer igen",
        "Called, no answer, follow up",
        "...................... !!!!! ??????",
    ],
)
def test_R4_stock_phrases_and_punctuation_are_refused_whatever_the_case(note: str) -> None:
    assert not adds_value(note)


def test_R4_stock_phrases_are_removed_as_whole_words_only() -> None:
    # "ok" inside "oktober", "mail" inside "mailkampagne" are real words, not stock phrases.
    assert substance("ok, oktober") == "oktober"
    assert substance("mailkampagne") == "mailkampagne"
    assert adds_value("Ringede: ønsker mailkampagne i oktober")


def test_R4_a_valuable_note_with_stock_phrases_around_it_adds_value() -> None:
    assert adds_value(f"Ringede. {VALUABLE}. Ok.")


# --------------------------------------------------------------------------- R3/R4: registration


@pytest.mark.parametrize(
    "type_", [t for t in ActivityType if t is not ActivityType.UNANNOUNCED_VISIT]
)
def test_R3_an_unplanned_physical_activity_is_an_unannounced_visit(type_: ActivityType) -> None:
    with pytest.raises(DomainError) as refused:
        check_registration(type_, Channel.PHYSICAL, VALUABLE)
    assert refused.value.code == "R3"
    assert "unannounced_visit" in refused.value.message


@pytest.mark.parametrize("channel", [c for c in Channel if c is not Channel.PHYSICAL])
def test_R3_an_unannounced_visit_is_physical(channel: Channel) -> None:
    with pytest.raises(DomainError) as refused:
        check_registration(ActivityType.UNANNOUNCED_VISIT, channel, VALUABLE)
    assert refused.value.code == "R3"
    with pytest.raises(DomainError) as refused_plan:
        require_visit_is_physical(ActivityType.UNANNOUNCED_VISIT, channel)
    assert refused_plan.value.code == "R3"


def test_R4_a_physical_visit_is_registered_whatever_its_note() -> None:
    check_registration(ActivityType.UNANNOUNCED_VISIT, Channel.PHYSICAL, "ok")  # no error


@pytest.mark.parametrize("channel", [Channel.PHONE, Channel.EMAIL, Channel.VIDEO])
def test_R4_an_unplanned_contact_needs_a_note_that_adds_value(channel: Channel) -> None:
    with pytest.raises(DomainError) as refused:
        check_registration(ActivityType.CONTACT, channel, "Ringede, ingen svar, ok")
    assert refused.value.code == "R4"
    assert refused.value.kind == "invalid"
    assert refused.value.details == {"field": "note"}
    check_registration(ActivityType.CONTACT, channel, VALUABLE)  # accepted


# --------------------------------------------------------------------------- R5 helpers


@pytest.mark.parametrize("value", [None, "", "   ", "\n\t"])
def test_R5_R6_required_text_refuses_blank(value: str | None) -> None:
    with pytest.raises(DomainError) as refused:
        require_text(value, "R6", "the next step")
    assert refused.value.code == "R6"


def test_required_text_is_stripped() -> None:
    assert require_text("  Send tilbud  ", "R6", "the next step") == "Send tilbud"


@pytest.mark.parametrize("minutes", [0, -30])
def test_R5_an_activity_ends_after_it_starts(minutes: int) -> None:
    with pytest.raises(DomainError) as refused:
        require_span(NOW, NOW + timedelta(minutes=minutes))
    assert refused.value.code == "ends_at"
    require_span(NOW, NOW + timedelta(minutes=1))


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(seconds=-1), timedelta(days=-3)])
def test_R1_R5_now_and_the_past_are_not_the_future(offset: timedelta) -> None:
    with pytest.raises(DomainError) as refused:
        require_future(NOW + offset, NOW, "R1", "moving an activity")
    assert refused.value.code == "R1"
    assert refused.value.details == {"field": "starts_at"}
    require_future(NOW + timedelta(seconds=1), NOW, "R1", "moving an activity")


# --------------------------------------------------------------------------- R10: profile


def test_R10_a_full_profile_is_accepted_with_an_exact_potential() -> None:
    profile = DiscoveryProfile.from_mapping(FULL_PROFILE)
    assert profile.potential_dkk == Decimal("150000")
    assert profile.as_dict() == {f: str(FULL_PROFILE[f]) for f in DISCOVERY_FIELDS}


def test_R10_the_profile_has_the_nine_fields_of_the_guide() -> None:
    assert set(DISCOVERY_FIELDS) == {
        "business",
        "situation",
        "challenges",
        "goals_and_plans",
        "advertising_needs",
        "potential_dkk",
        "competitors",
        "strategy",
        "unique_traits",
    }


def test_R10_missing_and_blank_fields_are_named() -> None:
    data = dict(FULL_PROFILE)
    del data["competitors"]
    data["strategy"] = "   "
    data["potential_dkk"] = None
    with pytest.raises(DomainError) as refused:
        DiscoveryProfile.from_mapping(data)
    assert refused.value.code == "R10"
    assert refused.value.details["missing"] == ["potential_dkk", "competitors", "strategy"]
    assert "competitors" in refused.value.message


def test_R10_an_empty_profile_names_every_field() -> None:
    with pytest.raises(DomainError) as refused:
        DiscoveryProfile.from_mapping({})
    assert refused.value.details["missing"] == list(DISCOVERY_FIELDS)


def test_R10_a_negative_potential_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        DiscoveryProfile.from_mapping({**FULL_PROFILE, "potential_dkk": "-1"})
    assert refused.value.code == "R10"
    assert refused.value.details == {"field": "discovery_profile.potential_dkk"}


@pytest.mark.parametrize("potential", ["mange penge", "NaN", "Infinity", "1,5 mio"])
def test_R10_a_potential_that_is_not_an_amount_is_refused(potential: str) -> None:
    with pytest.raises(DomainError) as refused:
        DiscoveryProfile.from_mapping({**FULL_PROFILE, "potential_dkk": potential})
    assert refused.value.code == "R10"
    assert refused.value.details == {"field": "discovery_profile.potential_dkk"}
