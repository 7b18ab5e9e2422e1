"""Finding customers by name: the folding the registry keeps and the query is read with."""

from __future__ import annotations

import pytest
from segmentation.application import Search
from segmentation.rules import fold, search_text, search_words


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Københavns Blomster", "kobenhavns blomster"),
        ("KØBENHAVN", "kobenhavn"),
        ("Ærø Æbler", "aero aebler"),
        ("Århus Å", "arhus a"),
        ("Crème Brûlée", "creme brulee"),
        ("Straße", "strasse"),
    ],
)
def test_folding_drops_case_and_accents(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_a_name_is_kept_as_its_words_each_after_a_space() -> None:
    assert search_text("Københavns Blomster ApS") == " kobenhavns blomster aps"
    assert search_text("Hansen-Jensen & Søn_2 (3F)") == " hansen jensen son 2 3f"
    assert search_text("  ") == ""


def test_a_query_is_its_words() -> None:
    assert search_words("  kobenhavn, BLOM ") == ["kobenhavn", "blom"]
    assert search_words("--- !") == []


@pytest.mark.parametrize(
    ("q", "search"),
    [
        ("12345678", Search(cvr="12345678")),
        (" 12345678 ", Search(cvr="12345678")),
        ("1234567", Search(words=("1234567",))),
        ("123456789", Search(words=("123456789",))),
        ("Køben Blom", Search(words=("koben", "blom"))),
    ],
)
def test_eight_digits_are_a_cvr_anything_else_words(q: str, search: Search) -> None:
    assert Search.of(q) == search


def test_a_query_without_letters_or_digits_finds_nothing() -> None:
    assert Search.of("-- 😍?") == Search()
    assert Search.of("-- 😍?").finds_nothing
    assert not Search.of("12345678").finds_nothing
    assert not Search.of("a").finds_nothing
