"""install_error_handlers: every failure answers `{"code", "message", "details"?}`."""

import logging
from collections.abc import Iterator
from typing import Annotated

import pytest
from crm_platform.http import ApiError, error_responses, install_error_handlers
from fastapi import FastAPI, HTTPException, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field


class Item(BaseModel):
    name: str = Field(max_length=20)


class Activity(BaseModel):
    subject: str = Field(max_length=200)
    duration_minutes: int = Field(ge=1)
    items: list[Item] = []


def build_app() -> FastAPI:
    app = FastAPI(responses=error_responses(422))
    install_error_handlers(app)

    @app.post("/activities")
    def create(activity: Activity) -> dict[str, str]:
        return {"subject": activity.subject}

    @app.get("/activities")
    def search(limit: Annotated[int, Query(le=100)] = 10) -> dict[str, int]:
        return {"limit": limit}

    @app.post("/activities/{activity_id}/complete")
    def complete(activity_id: str) -> None:
        raise ApiError(
            409,
            "invalid_transition",
            "R9: a proposal meeting is completed only with its written proposal attached.",
            details={"rule": "R9", "activity_id": activity_id},
            headers={"Retry-After": "1"},
        )

    @app.get("/activities/{activity_id}")
    def read(activity_id: str) -> None:
        raise HTTPException(404, f"No activity {activity_id}.")

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("database password=hunter2 at /srv/app/secret.py")

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    # Starlette re-raises unhandled errors after answering; the client must not.
    with TestClient(build_app(), raise_server_exceptions=False) as client:
        yield client


def test_a_validation_error_names_the_field(client: TestClient) -> None:
    long_subject = "s" * 5_000

    response = client.post("/activities", json={"subject": long_subject, "duration_minutes": 5})

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["message"] == "body.subject: String should have at most 200 characters"
    assert body["details"]["errors"] == [
        {
            "field": "body.subject",
            "message": "String should have at most 200 characters",
            "type": "string_too_long",
        }
    ]
    assert long_subject not in response.text


def test_nested_fields_and_missing_ones_are_listed(client: TestClient) -> None:
    response = client.post("/activities", json={"items": [{"name": "ok"}, {"name": "n" * 30}]})

    body = response.json()
    assert response.status_code == 422
    fields = [error["field"] for error in body["details"]["errors"]]
    assert fields == ["body.subject", "body.duration_minutes", "body.items[1].name"]
    assert body["message"] == "body.subject: Field required"


def test_query_parameters_are_named_too(client: TestClient) -> None:
    response = client.get("/activities", params={"limit": 1000})

    assert response.status_code == 422
    assert response.json()["message"] == "query.limit: Input should be less than or equal to 100"


def test_many_errors_are_truncated(client: TestClient) -> None:
    items = [{"name": "n" * 30} for _ in range(100)]

    response = client.post(
        "/activities", json={"subject": "s", "duration_minutes": 1, "items": items}
    )

    details = response.json()["details"]
    assert len(details["errors"]) == 20
    assert details["truncated"] is True
    assert details["error_count"] == 100


def test_malformed_json(client: TestClient) -> None:
    response = client.post(
        "/activities",
        content=b'{"subject": "x", ',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "malformed_json"
    assert body["message"].startswith("The request body is not valid JSON")
    assert body["details"] == {"position": 17}


def test_an_api_error_keeps_its_status_code_details_and_headers(client: TestClient) -> None:
    response = client.post("/activities/a-1/complete")

    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": "R9: a proposal meeting is completed only with its written proposal attached.",
        "details": {"rule": "R9", "activity_id": "a-1"},
    }
    assert response.headers["Retry-After"] == "1"


def test_an_http_exception_keeps_its_message(client: TestClient) -> None:
    response = client.get("/activities/a-404")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "No activity a-404."}


def test_an_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/no/such/thing")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "code": "not_found",
        "message": "Nothing is found at GET /no/such/thing.",
    }


def test_a_wrong_method_is_a_json_405(client: TestClient) -> None:
    response = client.delete("/activities")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    # Starlette names the methods of the first route matching the path.
    assert response.headers["Allow"] == "POST"
    assert response.json()["message"] == "Method DELETE is not allowed here; allowed: POST."


def test_an_unhandled_error_is_a_generic_500(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="crm_platform.http"):
        response = client.get("/crash")

    assert response.status_code == 500
    assert response.json() == {
        "code": "internal_error",
        "message": "An internal error occurred; it has been logged.",
    }
    for leak in ("Traceback", "RuntimeError", "hunter2", "secret.py"):
        assert leak not in response.text
    logged = [r for r in caplog.records if r.name == "crm_platform.http.handlers"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


def test_the_error_shape_is_documented() -> None:
    document = build_app().openapi()

    response = document["paths"]["/activities"]["post"]["responses"]["422"]
    assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
