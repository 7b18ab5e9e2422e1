"""Finding customers: `GET /customers?q=` on SQLite and PostgreSQL. Words of the name, each a
word's beginning, ignoring case and accents; or a CVR number exactly. Paged like the list, and
combined with its filters; the registry column it reads is added to an older table."""

from __future__ import annotations

from typing import Any

import pytest
from crm_contracts.patterns import NAME_PATTERN
from fastapi.testclient import TestClient
from segmentation.application import Search, SegmentationApplication
from segmentation.registry import ADDED

from tests.integration.segmentation.test_api import ANNA_H, MIA_H, client, register
from tests.support.people import MIA

__all__ = ["client"]  # fixture


def found(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/customers", params=params, headers=ANNA_H)
    assert response.status_code == 200, response.json()
    return [c["customer_id"] for c in response.json()["items"]]


@pytest.fixture
def customers(client: TestClient) -> None:
    register(client, "k-1", name="Københavns Blomster", cvr="12345678", potential_dkk="500000")
    register(client, "k-2", name="Blomsterhuset Ærø ApS", cvr="87654321", potential_dkk="50000")
    register(client, "k-3", name="Bager Hansen", potential_dkk="200000")
    register(client, "k-4", name="Crème & Brûlée København")


@pytest.mark.usefixtures("customers")
@pytest.mark.parametrize(
    ("q", "ids"),
    [
        ("kobenhavn", ["k-1", "k-4"]),
        ("KØBENHAVN", ["k-1", "k-4"]),
        ("Københavns", ["k-1"]),
        ("blom", ["k-1", "k-2"]),
        ("BLOMSTER", ["k-1", "k-2"]),
        ("aero", ["k-2"]),
        ("ærø aps", ["k-2"]),
        ("creme brulee", ["k-4"]),
        ("kobenhavn blom", ["k-1"]),
        ("lomster", []),  # a word's beginning, not any part of it
        ("hansen bager", ["k-3"]),
        ("Ukendt Firma", []),
        ("12345678", ["k-1"]),
        ("87654321", ["k-2"]),
        ("1234567", []),
        ("11111111", []),
        ("-- !", []),  # nothing to look for: nobody, not everybody
        ("😍?", []),
    ],
)
def test_names_by_their_words_and_cvr_numbers_exactly(
    client: TestClient, q: str, ids: list[str]
) -> None:
    assert found(client, q=q) == ids


@pytest.mark.usefixtures("customers")
def test_q_goes_with_the_other_filters(client: TestClient) -> None:
    assert found(client, q="blom", segment="A") == ["k-1"]
    assert found(client, q="blom", prioritized="false") == ["k-2"]
    assert found(client, q="blom", owner="nobody@example.dk") == []


def test_q_pages_like_the_list(client: TestClient) -> None:
    for i in range(5):
        register(client, f"b-{i}", name=f"Blomst nr. {i}")
        register(client, f"x-{i}", name=f"Andet {i}")
    first = client.get("/customers", params={"q": "blomst", "limit": 2}, headers=ANNA_H).json()
    assert [c["customer_id"] for c in first["items"]] == ["b-0", "b-1"]
    rest = client.get(
        "/customers",
        params={"q": "blomst", "limit": 3, "cursor": first["next_cursor"]},
        headers=ANNA_H,
    ).json()
    assert [c["customer_id"] for c in rest["items"]] == ["b-2", "b-3", "b-4"]


def test_a_renamed_customer_is_found_by_its_new_name(client: TestClient) -> None:
    register(client, "k-1", name="Bager Hansen")
    assert client.patch("/customers/k-1", json={"name": "Bageriet Ø"}, headers=MIA_H).is_success
    assert found(client, q="bageriet o") == ["k-1"]
    assert found(client, q="hansen") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": ""}, "query.q"),
        ({"q": "x" * 201}, "query.q"),
        ({"q": "a\u0000b"}, "query.q"),
        ({"name": "Bager"}, "query.name"),  # there is no name filter: q finds names
    ],
)
def test_a_query_outside_the_document_is_refused(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    response = client.get("/customers", params=params, headers=ANNA_H)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_the_document_describes_q(client: TestClient) -> None:
    document = client.app.openapi()  # type: ignore[attr-defined]
    parameters = document["paths"]["/customers"]["get"]["parameters"]
    q = next(p for p in parameters if p["name"] == "q")
    assert "CVR" in q["description"]
    assert (q["schema"]["minLength"], q["schema"]["maxLength"]) == (1, 200)
    assert q["schema"]["pattern"] == NAME_PATTERN


def test_an_older_registry_table_gets_the_new_columns_and_its_names_are_found(
    app: SegmentationApplication, env: dict[str, str]
) -> None:
    app.register_customer(MIA, name="Københavns Blomster", customer_id="k-1")
    registry = app.registry
    with registry.datastore.transaction(commit=True) as cursor:  # as before the columns
        for index in ("value_programme_starts_on",):
            cursor.execute(f"DROP INDEX IF EXISTS {_index(app, index)}")
        for column in ADDED:
            cursor.execute(registry._statement(f"ALTER TABLE {{t}} DROP COLUMN {column}"))

    reopened = SegmentationApplication(env)
    try:
        rows = reopened.customers(search=None)
        assert [r.search_name for r in rows] == [" kobenhavns blomster"]
        assert [r.customer_id for r in reopened.customers(search=Search.of("KØBEN"))] == ["k-1"]
        assert rows[0].value_programme is None
    finally:
        reopened.close()


def _index(app: SegmentationApplication, column: str) -> str:
    table = app.registry.registry_table
    if '"' in table:  # PostgreSQL: "schema".name; its indexes live in the schema
        schema, _, name = table.partition(".")
        return f"{schema}.{name}_{column}"
    return f"{table}_{column}"
