"""install_error_handlers and StrictRoute: every failure answers RFC 9457 problem details."""

import logging
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from crm_platform.http import (
    PROBLEM_MEDIA_TYPE,
    ApiError,
    StrictRoute,
    error_responses,
    install_error_handlers,
)
from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.testclient import TestClient
from httpx import Response
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
    router = APIRouter(route_class=StrictRoute)

    @router.post("/activities")
    def create(activity: Activity) -> dict[str, str]:
        return {"subject": activity.subject}

    @router.get("/activities")
    def search(limit: Annotated[int, Query(le=100)] = 10) -> dict[str, int]:
        return {"limit": limit}

    @router.post("/activities/{activity_id}/complete")
    def complete(activity_id: str) -> None:
        raise ApiError(
            409,
            "R9",
            "R9: a proposal meeting is completed only with its written proposal attached.",
            details={"activity_id": activity_id},
            headers={"Retry-After": "1"},
        )

    @router.get("/activities/{activity_id}")
    def read(activity_id: str) -> None:
        raise HTTPException(404, f"No activity {activity_id}.")

    @router.get("/crash")
    def crash() -> None:
        raise RuntimeError("database password=hunter2 at /srv/app/secret.py")

    app.include_router(router)
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    # Starlette re-raises unhandled errors after answering; the client must not.
    with TestClient(build_app(), raise_server_exceptions=False) as client:
        yield client


def problem(response: Response, status: int, code: str) -> dict[str, Any]:
    """The problem body, after checking the members every problem has."""
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["type"] == f"tag:crm-activity-backbone,2026:problem:{code}"
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    assert body["instance"] == response.request.url.path
    return body


def test_a_validation_error_names_the_field(client: TestClient) -> None:
    long_subject = "s" * 5_000

    response = client.post("/activities", json={"subject": long_subject, "duration_minutes": 5})

    body = problem(response, 422, "validation_error")
    assert body["title"] == "Unprocessable Entity"
    assert body["detail"] == "body.subject: String should have at most 200 characters"
    assert body["errors"] == [
        {
            "field": "body.subject",
            "message": "String should have at most 200 characters",
            "type": "string_too_long",
        }
    ]
    assert long_subject not in response.text


def test_nested_fields_and_missing_ones_are_listed(client: TestClient) -> None:
    response = client.post("/activities", json={"items": [{"name": "ok"}, {"name": "n" * 30}]})

    body = problem(response, 422, "validation_error")
    fields = [error["field"] for error in body["errors"]]
    assert fields == ["body.subject", "body.duration_minutes", "body.items[1].name"]
    assert body["detail"] == "body.subject: Field required"


def test_query_parameters_are_named_too(client: TestClient) -> None:
    response = client.get("/activities", params={"limit": 1000})

    body = problem(response, 422, "validation_error")
    assert body["detail"] == "query.limit: Input should be less than or equal to 100"


def test_an_unknown_query_parameter_is_refused_by_name(client: TestClient) -> None:
    response = client.get("/activities", params={"limt": 5, "limit": 5})

    body = problem(response, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["query.limt"]
    assert body["errors"][0]["type"] == "unknown_parameter"
    assert "known: limit" in body["detail"]


def test_a_body_that_is_not_json_is_415(client: TestClient) -> None:
    response = client.post(
        "/activities",
        content=b"subject=x&duration_minutes=5",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    body = problem(response, 415, "unsupported_media_type")
    assert body["accepted"] == ["application/json"]


@pytest.mark.parametrize("content_type", ["application/json", "application/merge-patch+json"])
def test_json_media_types_are_accepted(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/activities",
        content=b'{"subject": "x", "duration_minutes": 5}',
        headers={"Content-Type": f"{content_type}; charset=utf-8"},
    )

    assert response.status_code == 200


def test_a_body_that_is_not_utf8_is_malformed(client: TestClient) -> None:
    response = client.post(
        "/activities",
        content=b'{"subject": "\xff\xfe", "duration_minutes": 5}',
        headers={"Content-Type": "application/json"},
    )

    body = problem(response, 400, "malformed_json")
    assert body["position"] == 13


def test_many_errors_are_truncated(client: TestClient) -> None:
    items = [{"name": "n" * 30} for _ in range(100)]

    response = client.post(
        "/activities", json={"subject": "s", "duration_minutes": 1, "items": items}
    )

    body = problem(response, 422, "validation_error")
    assert len(body["errors"]) == 20
    assert body["truncated"] is True
    assert body["error_count"] == 100


def test_malformed_json(client: TestClient) -> None:
    response = client.post(
        "/activities",
        content=b'{"subject": "x", ',
        headers={"Content-Type": "application/json"},
    )

    body = problem(response, 400, "malformed_json")
    assert body["detail"].startswith("The request body is not valid JSON")
    assert body["position"] == 17


def test_an_api_error_keeps_its_status_code_details_and_headers(client: TestClient) -> None:
    response = client.post("/activities/a-1/complete")

    assert problem(response, 409, "R9") == {
        "type": "tag:crm-activity-backbone,2026:problem:R9",
        "title": "Conflict",
        "status": 409,
        "detail": "R9: a proposal meeting is completed only with its written proposal attached.",
        "instance": "/activities/a-1/complete",
        "code": "R9",
        "rule": "R9",
        "activity_id": "a-1",
    }
    assert response.headers["Retry-After"] == "1"


def test_an_http_exception_keeps_its_message(client: TestClient) -> None:
    response = client.get("/activities/a-404")

    assert problem(response, 404, "not_found")["detail"] == "No activity a-404."


def test_an_unknown_route_is_a_problem_404(client: TestClient) -> None:
    response = client.get("/no/such/thing")

    body = problem(response, 404, "not_found")
    assert body["detail"] == "Nothing is found at GET /no/such/thing."


def test_a_wrong_method_is_a_405_allowing_every_method_of_the_path(client: TestClient) -> None:
    response = client.delete("/activities")

    body = problem(response, 405, "method_not_allowed")
    # Two routes serve /activities; Starlette alone would name only the first one's.
    assert response.headers["Allow"] == "GET, HEAD, POST"
    assert body["detail"] == "Method DELETE is not allowed here; allowed: GET, HEAD, POST."


def test_an_unhandled_error_is_a_generic_500(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="crm_platform.http"):
        response = client.get("/crash")

    body = problem(response, 500, "internal_error")
    assert body["detail"] == "An internal error occurred; it has been logged."
    for leak in ("Traceback", "RuntimeError", "hunter2", "secret.py"):
        assert leak not in response.text
    logged = [r for r in caplog.records if r.name == "crm_platform.http.handlers"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


def test_the_problem_shape_is_documented() -> None:
    document = build_app().openapi()

    response = document["paths"]["/activities"]["post"]["responses"]["422"]
    schema = response["content"][PROBLEM_MEDIA_TYPE]["schema"]
    assert {"type", "title", "status", "detail", "code"} <= set(schema["required"])
    assert schema["additionalProperties"] is True
    assert "application/json" not in response["content"]
