"""The segmentation API over HTTP, on SQLite and on PostgreSQL: status codes, error bodies,
ETags, idempotency, who may do what, money as strings, and the segment boundaries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from crm_platform.auth import Authenticator, AuthSettings
from fastapi.testclient import TestClient
from segmentation.api import SegmentationApi, create_app
from segmentation.application import SegmentationApplication
from segmentation.relay import snapshot

from tests.support.people import ANNA, BO, MIA
from tests.support.people import dev_headers as as_user

Headers = dict[str, str]


ANNA_H, BO_H, MIA_H = as_user(ANNA), as_user(BO), as_user(MIA)


@pytest.fixture
def client(app: SegmentationApplication) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    web = create_app(
        SegmentationApi(app=app, auth=auth, checks={"store": app.recorder.max_notification_id})
    )
    with TestClient(web, raise_server_exceptions=False) as test_client:
        yield test_client


def register(client: TestClient, customer_id: str = "c-1", **body: Any) -> dict[str, Any]:
    payload = {"customer_id": customer_id, "name": "Bager Hansen ApS", **body}
    response = client.post("/customers", json=payload, headers=MIA_H)
    assert response.status_code == 201, response.json()
    return dict(response.json())


def events(app: SegmentationApplication) -> int:
    return int(app.recorder.max_notification_id() or 0)


def fields_of(response: Any) -> set[str]:
    return {str(e.get("field")) for e in response.json()["errors"]}


def test_register_answers_201_with_location_etag_and_an_unsegmented_customer(
    client: TestClient,
) -> None:
    response = client.post(
        "/customers",
        json={"customer_id": "c-1", "name": "Bager Hansen ApS", "cvr": "12345678"},
        headers=MIA_H,
    )
    assert response.status_code == 201
    assert response.headers["Location"] == "/customers/c-1"
    assert response.headers["ETag"] == '"1"'
    body = response.json()
    assert (body["segment"], body["segment_label"], body["prioritized"]) == (
        "unsegmented",
        "Usegmenteret",
        False,
    )
    assert body["potential_dkk"] is None
    got = client.get("/customers/c-1", headers=ANNA_H)
    assert got.status_code == 200
    assert got.headers["ETag"] == '"1"'
    assert got.json()["cvr"] == "12345678"
    assert "attainment" in got.json()  # the hook the attainment report fills in


def test_register_with_a_potential_is_one_change_and_money_is_a_string(
    client: TestClient, app: SegmentationApplication
) -> None:
    body = register(client, potential_dkk="390000")
    assert (body["potential_dkk"], body["segment"], body["prioritized"]) == ("390000.00", "A", True)
    customer_events = app.history("c-1")
    assert len({e.timestamp for e in customer_events}) == 1  # one transaction, one moment


def test_a_consultant_registers_only_customers_she_owns(client: TestClient) -> None:
    mine = {"customer_id": "c-2", "name": "Kiosken", "owner": ANNA.user_id}
    assert client.post("/customers", json=mine, headers=ANNA_H).status_code == 201
    theirs = {"customer_id": "c-3", "name": "Kiosken", "owner": BO.user_id}
    assert client.post("/customers", json=theirs, headers=ANNA_H).status_code == 403
    potential = {"customer_id": "c-4", "name": "X", "owner": ANNA.user_id, "potential_dkk": "1"}
    assert client.post("/customers", json=potential, headers=ANNA_H).status_code == 403


def test_invalid_bodies_answer_422_naming_the_fields(client: TestClient) -> None:
    response = client.post(
        "/customers",
        json={"name": "x" * 201, "cvr": "1234", "potential_dkk": "-1"},
        headers=MIA_H,
    )
    assert response.status_code == 422
    assert {"body.name", "body.cvr", "body.potential_dkk"} <= fields_of(response)
    missing = client.post("/customers", json={"cvr": "12345678"}, headers=MIA_H)
    assert missing.status_code == 422
    assert "body.name" in fields_of(missing)


def test_unknown_customers_answer_404_and_duplicates_409(client: TestClient) -> None:
    assert client.get("/customers/nope", headers=ANNA_H).status_code == 404
    assert client.get("/customers/nope/history", headers=ANNA_H).status_code == 404
    put = client.put("/customers/nope/potential", json={"amount_dkk": "1"}, headers=MIA_H)
    assert put.status_code == 404
    register(client)
    again = client.post("/customers", json={"customer_id": "c-1", "name": "X"}, headers=MIA_H)
    assert again.status_code == 409
    assert again.json()["code"] == "customer_exists"


def test_unauthenticated_callers_get_401(client: TestClient) -> None:
    assert client.get("/customers/c-1").status_code == 401


@pytest.mark.parametrize(
    ("amount", "segment", "prioritized"),
    [
        ("0", "D", False),
        ("44999.99", "D", False),
        ("45000", "C", False),
        ("45000.00", "C", False),
        ("139999.99", "C", False),
        ("140000", "B", True),
        ("389999.99", "B", True),
        ("390000", "A", True),
        ("390000.00", "A", True),
    ],
)
def test_segment_boundaries_through_the_api(
    client: TestClient, amount: str, segment: str, prioritized: bool
) -> None:
    register(client)
    response = client.put("/customers/c-1/potential", json={"amount_dkk": amount}, headers=MIA_H)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["segment"], body["prioritized"]) == (segment, prioritized)
    assert body["potential_dkk"] == f"{float(amount):.2f}"


@pytest.mark.parametrize("amount", ["-0.01", "-390000", "12.345", "abc", "1e400", 390000, 1.5])
def test_bad_amounts_answer_422_and_record_nothing(
    client: TestClient, app: SegmentationApplication, amount: object
) -> None:
    # Numbers too: a JSON number is a float to most clients, inexact before we see it.
    register(client)
    before = events(app)
    response = client.put("/customers/c-1/potential", json={"amount_dkk": amount}, headers=MIA_H)
    assert response.status_code == 422
    assert "body.amount_dkk" in fields_of(response)
    assert events(app) == before


def test_a_consultant_may_not_change_a_potential(
    client: TestClient, app: SegmentationApplication
) -> None:
    register(client, owner=ANNA.user_id)
    before = events(app)
    response = client.put("/customers/c-1/potential", json={"amount_dkk": "1"}, headers=ANNA_H)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    agreement = {"starts_on": "2026-01-01", "ends_on": "2026-12-31"}
    put = client.put("/customers/c-1/annual-agreement", json=agreement, headers=ANNA_H)
    assert put.status_code == 403
    assert events(app) == before


def test_a_stale_if_match_answers_412_and_a_current_one_applies(client: TestClient) -> None:
    register(client)
    first = client.put(
        "/customers/c-1/potential",
        json={"amount_dkk": "50000"},
        headers={**MIA_H, "If-Match": '"1"'},
    )
    assert first.status_code == 200
    etag = first.headers["ETag"]
    stale = client.put(
        "/customers/c-1/potential",
        json={"amount_dkk": "60000"},
        headers={**MIA_H, "If-Match": '"1"'},
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "stale_version"
    current = client.put(
        "/customers/c-1/potential",
        json={"amount_dkk": "60000"},
        headers={**MIA_H, "If-Match": etag},
    )
    assert current.status_code == 200
    bad = client.put(
        "/customers/c-1/potential", json={"amount_dkk": "1"}, headers={**MIA_H, "If-Match": "x"}
    )
    assert bad.status_code == 422


def test_a_repeated_idempotency_key_replays_without_a_second_change(
    client: TestClient, app: SegmentationApplication
) -> None:
    register(client)
    headers = {**MIA_H, "Idempotency-Key": "k-1"}
    first = client.put("/customers/c-1/potential", json={"amount_dkk": "140000"}, headers=headers)
    after_first = events(app)
    again = client.put("/customers/c-1/potential", json={"amount_dkk": "140000"}, headers=headers)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert events(app) == after_first
    other = client.put("/customers/c-1/potential", json={"amount_dkk": "1"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    created = {"customer_id": "c-9", "name": "Ny kunde"}
    keyed = {**MIA_H, "Idempotency-Key": "k-2"}
    assert client.post("/customers", json=created, headers=keyed).status_code == 201
    replay = client.post("/customers", json=created, headers=keyed)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_an_annual_agreement_overrides_the_potential_until_it_is_ended(
    client: TestClient,
) -> None:
    register(client, potential_dkk="10000")
    agreement = {"starts_on": "2026-01-01", "ends_on": "2026-12-31"}
    started = client.put("/customers/c-1/annual-agreement", json=agreement, headers=MIA_H)
    assert started.status_code == 200, started.json()
    body = started.json()
    assert (body["segment"], body["segment_label"], body["prioritized"]) == (
        "annual_agreement",
        "Årsaftale",
        True,
    )
    assert body["annual_agreement"] == agreement
    backwards = {"starts_on": "2026-12-31", "ends_on": "2026-01-01"}
    refused = client.put("/customers/c-1/annual-agreement", json=backwards, headers=MIA_H)
    assert refused.status_code == 422
    ended = client.delete("/customers/c-1/annual-agreement", headers=MIA_H)
    assert ended.status_code == 200, ended.json()
    assert ended.json()["segment"] == "D"


def test_patch_renames_put_owner_moves_and_history_says_who_and_why(
    client: TestClient,
) -> None:
    register(client, owner=ANNA.user_id)
    renamed = client.patch("/customers/c-1", json={"name": "Bageriet"}, headers=ANNA_H)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Bageriet"
    put = client.put("/customers/c-1/owner", json={"owner": BO.user_id}, headers=ANNA_H)
    assert put.status_code == 403
    moved = client.put(
        "/customers/c-1/owner", json={"owner": BO.user_id}, headers={**MIA_H, "If-Match": '"2"'}
    )
    assert moved.status_code == 200, moved.json()
    assert (moved.json()["owner"], moved.json()["version"]) == (BO.user_id, 3)
    assert moved.headers["ETag"] == '"3"'
    client.put(
        "/customers/c-1/potential",
        json={"amount_dkk": "400000", "note": "Ny butik i Aarhus"},
        headers=MIA_H,
    )
    history = client.get("/customers/c-1/history", headers=ANNA_H).json()
    assert [h["event"] for h in history] == [
        "registered",
        "renamed",
        "owner_changed",
        "potential_assessed",
        "segment_changed",
    ]
    assert history[1]["actor"] == ANNA.user_id
    assert (history[2]["actor"], history[2]["details"]["owner"]) == (MIA.user_id, BO.user_id)
    assert history[3]["why"] == "Ny butik i Aarhus"
    assert history[4]["details"]["to_segment"] == "A"
    assert history[4]["why"] == "potential_assessed"


def test_put_owner_is_for_managers_with_if_match_and_idempotency_key(
    client: TestClient, app: SegmentationApplication
) -> None:
    register(client, owner=ANNA.user_id)
    before = events(app)
    for headers in (ANNA_H, BO_H):
        refused = client.put("/customers/c-1/owner", json={"owner": BO.user_id}, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    for body in ({}, {"owner": None}, {"owner": "bo"}, {"owner": BO.user_id, "name": "X"}):
        assert client.put("/customers/c-1/owner", json=body, headers=MIA_H).status_code == 422
    same = client.put("/customers/c-1/owner", json={"owner": ANNA.user_id}, headers=MIA_H)
    assert (same.status_code, same.json()["code"]) == (409, "owner_unchanged")
    stale = client.put(
        "/customers/c-1/owner", json={"owner": BO.user_id}, headers={**MIA_H, "If-Match": '"9"'}
    )
    assert stale.status_code == 412
    assert (
        client.put("/customers/nope/owner", json={"owner": BO.user_id}, headers=MIA_H).status_code
        == 404
    )
    assert events(app) == before

    keyed = {**MIA_H, "Idempotency-Key": "owner-1"}
    first = client.put("/customers/c-1/owner", json={"owner": "BO@example.dk"}, headers=keyed)
    assert (first.status_code, first.json()["owner"]) == (200, BO.user_id)
    after_first = events(app)
    again = client.put("/customers/c-1/owner", json={"owner": "BO@example.dk"}, headers=keyed)
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert events(app) == after_first
    assert snapshot(app.customer("c-1").customer).owner == BO.user_id  # what the topic carries


def test_patch_only_renames_and_never_answers_200_for_nothing(
    client: TestClient, app: SegmentationApplication
) -> None:
    register(client, owner=ANNA.user_id)
    before = events(app)
    for headers in (MIA_H, ANNA_H, BO_H):
        empty = client.patch("/customers/c-1", json={}, headers=headers)
        assert (empty.status_code, empty.json()["code"]) == (422, "validation_error")
    owner = client.patch("/customers/c-1", json={"owner": BO.user_id}, headers=MIA_H)
    assert owner.status_code == 422  # the owner changes with PUT .../owner
    assert {e["field"] for e in owner.json()["errors"]} == {"body.name", "body.owner"}
    same = client.patch("/customers/c-1", json={"name": "Bager Hansen ApS"}, headers=ANNA_H)
    assert (same.status_code, same.json()["code"]) == (409, "name_unchanged")
    not_hers = client.patch("/customers/c-1", json={"name": "Bageriet"}, headers=BO_H)
    assert (not_hers.status_code, not_hers.json()["code"]) == (403, "forbidden")
    stale = client.patch(
        "/customers/c-1", json={"name": "Bageriet"}, headers={**ANNA_H, "If-Match": '"2"'}
    )
    assert stale.status_code == 412
    assert events(app) == before
    renamed = client.patch(
        "/customers/c-1", json={"name": "Bageriet"}, headers={**MIA_H, "If-Match": '"1"'}
    )
    assert (renamed.status_code, renamed.json()["name"]) == (200, "Bageriet")


def test_the_document_has_one_way_to_change_the_owner(client: TestClient) -> None:
    document = client.app.openapi()  # type: ignore[attr-defined]
    paths = document["paths"]
    assert set(paths["/customers/{customer_id}/owner"]) == {"put"}
    patch = paths["/customers/{customer_id}"]["patch"]
    schema = patch["requestBody"]["content"]["application/json"]["schema"]
    body = document["components"]["schemas"][schema["$ref"].rpartition("/")[2]]
    assert (set(body["properties"]), body["required"]) == ({"name"}, ["name"])


def test_listing_filters_and_pages_with_a_cursor(client: TestClient) -> None:
    for i, amount in enumerate(["500000", "10000", "200000", "20000", "600000"]):
        owner = ANNA.user_id if i % 2 == 0 else BO.user_id
        register(client, f"c-{i}", potential_dkk=amount, owner=owner)
    page = client.get("/customers", params={"limit": 2}, headers=ANNA_H).json()
    assert [c["customer_id"] for c in page["items"]] == ["c-0", "c-1"]
    rest = client.get(
        "/customers", params={"limit": 5, "cursor": page["next_cursor"]}, headers=ANNA_H
    ).json()
    assert [c["customer_id"] for c in rest["items"]] == ["c-2", "c-3", "c-4"]
    assert rest["next_cursor"] is None
    prioritized = client.get(
        "/customers", params={"prioritized": "true", "limit": 2}, headers=ANNA_H
    ).json()
    assert [c["customer_id"] for c in prioritized["items"]] == ["c-0", "c-2"]
    more = client.get(
        "/customers",
        params={"prioritized": "true", "limit": 2, "cursor": prioritized["next_cursor"]},
        headers=ANNA_H,
    ).json()
    assert [c["customer_id"] for c in more["items"]] == ["c-4"]
    a = client.get("/customers", params={"segment": "A", "owner": ANNA.user_id}, headers=ANNA_H)
    assert [c["customer_id"] for c in a.json()["items"]] == ["c-0", "c-4"]
    assert client.get("/customers", params={"segment": "Z"}, headers=ANNA_H).status_code == 422
    assert client.get("/customers", params={"cursor": "x"}, headers=ANNA_H).status_code == 422


def test_operations_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    register(client)
    metrics = client.get("/metrics").text
    assert 'crm_segmentation_commands_total{command="register",outcome="ok"} 1.0' in metrics


def test_an_oversized_body_is_refused_with_413(app: SegmentationApplication) -> None:
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    web = create_app(SegmentationApi(app=app, auth=auth, max_body_bytes=1024))
    with TestClient(web, raise_server_exceptions=False) as small:
        response = small.post("/customers", json={"name": "x" * 5000}, headers=MIA_H)
        assert response.status_code == 413
