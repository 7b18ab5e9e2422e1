"""The segmentation API at its edges: ids that cannot be a URL, text PostgreSQL cannot hold,
Location behind a prefix, and an Idempotency-Key that must not open a door."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from crm_platform.auth import Authenticator, AuthSettings
from eventsourcing.persistence import OperationalError
from fastapi import FastAPI
from fastapi.testclient import TestClient
from segmentation.api import SegmentationApi, create_app
from segmentation.application import SegmentationApplication

from tests.support.people import MIA
from tests.support.problems import refused_fields

MIA_H = {"X-Dev-User": MIA.user_id, "X-Dev-Roles": "sales_manager"}
ANNA_H = {"X-Dev-User": "anna@example.dk", "X-Dev-Roles": "consultant"}


@pytest.fixture
def api(app: SegmentationApplication) -> SegmentationApi:
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    return SegmentationApi(app=app, auth=auth)


@pytest.fixture
def client(api: SegmentationApi) -> Iterator[TestClient]:
    with TestClient(create_app(api), raise_server_exceptions=False) as test_client:
        yield test_client


def events(app: SegmentationApplication) -> int:
    return int(app.recorder.max_notification_id() or 0)


@pytest.mark.parametrize(
    "customer_id", ["kunde-ą", "a/b", "..", ".hidden", "a b", "a\u0000b", "x" * 101, ""]
)
def test_an_id_that_cannot_be_one_path_segment_is_refused_and_nothing_is_stored(
    client: TestClient, app: SegmentationApplication, customer_id: str
) -> None:
    before = events(app)

    response = client.post(
        "/customers", json={"customer_id": customer_id, "name": "Bager"}, headers=MIA_H
    )

    assert refused_fields(response) == ["body.customer_id"]
    assert events(app) == before


@pytest.mark.parametrize("name", ["Bager\u0000Hansen", "Bager\u001bHansen", "Bager\u0085"])
def test_a_control_character_in_a_name_is_refused(
    client: TestClient, app: SegmentationApplication, name: str
) -> None:
    before = events(app)

    response = client.post("/customers", json={"customer_id": "k1", "name": name}, headers=MIA_H)

    assert refused_fields(response) == ["body.name"]
    assert events(app) == before


@pytest.mark.parametrize("owner", ["anna", "anna@example", "anna\u0000@example.dk"])
def test_an_owner_must_be_an_e_mail_address(client: TestClient, owner: str) -> None:
    response = client.post(
        "/customers", json={"customer_id": "k1", "name": "Bager", "owner": owner}, headers=MIA_H
    )

    assert refused_fields(response) == ["body.owner"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/customers/a%00b", "path.customer_id"),
        ("/customers/a%00b/history", "path.customer_id"),
        ("/customers?owner=x%00@y.dk", "query.owner"),
        ("/customers?segmnt=A", "query.segmnt"),
    ],
)
def test_odd_paths_and_queries_are_refused_by_name(
    client: TestClient, path: str, field: str
) -> None:
    assert refused_fields(client.get(path, headers=MIA_H)) == [field]


def test_agreement_days_are_bounded(client: TestClient) -> None:
    client.post("/customers", json={"customer_id": "k1", "name": "Bager"}, headers=MIA_H)

    response = client.put(
        "/customers/k1/annual-agreement",
        json={"starts_on": "2026-01-01", "ends_on": "9999-12-31"},
        headers=MIA_H,
    )

    assert refused_fields(response) == ["body.ends_on"]


def test_location_is_the_full_path_under_the_prefix(api: SegmentationApi) -> None:
    root = FastAPI()
    root.mount("/segmentation", create_app(api))
    with TestClient(root) as client:
        response = client.post(
            "/segmentation/customers",
            json={"customer_id": "K-1:a@b+c~d", "name": "Bager"},
            headers=MIA_H,
        )

        assert response.status_code == 201
        location = response.headers["Location"]
        assert location == "/segmentation/customers/K-1:a@b+c~d"
        assert client.get(location, headers=MIA_H).json()["customer_id"] == "K-1:a@b+c~d"


def test_a_copy_of_a_colleagues_request_under_any_key_is_judged_by_the_rules(
    client: TestClient, app: SegmentationApplication
) -> None:
    body = {"customer_id": "k1", "name": "Bager", "potential_dkk": "500000.00"}
    first = client.post("/customers", json=body, headers=MIA_H | {"Idempotency-Key": "k"})
    assert first.status_code == 201
    after = events(app)

    for key in ("k", "another"):
        copy = client.post("/customers", json=body, headers=ANNA_H | {"Idempotency-Key": key})

        assert copy.status_code == 403, copy.text
        assert "Idempotent-Replayed" not in copy.headers
    assert events(app) == after


def test_a_managers_retry_with_a_potential_is_replayed_once(
    client: TestClient, app: SegmentationApplication
) -> None:
    body = {"customer_id": "k1", "name": "Bager", "potential_dkk": "500000.00"}
    first = client.post("/customers", json=body, headers=MIA_H | {"Idempotency-Key": "k"})
    after = events(app)

    again = client.post("/customers", json=body, headers=MIA_H | {"Idempotency-Key": "k"})
    other = client.post(
        "/customers", json=body | {"name": "Bageren"}, headers=MIA_H | {"Idempotency-Key": "k"}
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert events(app) == after


def test_a_failure_after_the_commit_never_turns_a_saved_change_into_an_error(
    client: TestClient, app: SegmentationApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_gone(*args: object) -> None:
        raise OperationalError("the server closed the connection")

    # The catch-up with a newer policy is the one step that runs after a command commits.
    monkeypatch.setattr(app, "_try_catch_up", database_gone)

    response = client.post("/customers", json={"customer_id": "k1", "name": "Bager"}, headers=MIA_H)

    assert response.status_code == 201, response.text
    assert client.get("/customers/k1", headers=MIA_H).json()["name"] == "Bager"


def test_import_is_the_imports_path_never_a_customers(client: TestClient) -> None:
    refused = client.post(
        "/customers", json={"customer_id": "import", "name": "Bager"}, headers=MIA_H
    )
    wrong_method = client.get("/customers/import", headers=MIA_H)

    assert (refused.status_code, refused.json()["code"]) == (422, "customer_id")
    assert (wrong_method.status_code, wrong_method.headers["Allow"]) == (405, "POST")
    assert client.delete("/customers/import", headers=MIA_H).headers["Allow"] == "POST"
