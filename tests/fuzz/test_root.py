"""The embedded root app as a whole: what lies outside the three documents.

`python -m crm_embedded` serves the three APIs under their prefixes and an index at `/`; no
document describes the rest of its URL space, so schemathesis never goes there. Unknown paths
must answer 404 and known paths with a wrong method 405, as problem details like every other
error, and a 405 must name every method the path serves in `Allow` (RFC 9110 §15.5.6), also
when a path has routes for several methods.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fuzz.problems import allowed, assert_problem
from tests.fuzz.schemas import SCHEMAS
from tests.fuzz.system import AUTH_HEADERS, USER, EmbeddedSystem

pytestmark = pytest.mark.fuzz

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SAMPLE_VALUES = {
    "activity_id": str(uuid.UUID(int=1)),
    "recomputation_id": str(uuid.UUID(int=1)),
    "customer_id": "fuzz-a",
    "owner": USER,
}


@pytest.fixture(scope="module")
def client(embedded: EmbeddedSystem) -> Iterator[TestClient]:
    with TestClient(embedded.root, raise_server_exceptions=False) as client:
        client.headers.update(AUTH_HEADERS)
        yield client


def documented_paths() -> list[Any]:
    cases = []
    for prefix, schema in SCHEMAS.items():
        for template, item in schema.raw_schema["paths"].items():
            methods = {m.upper() for m in item if m.upper() in METHODS}
            path = template
            for name, value in SAMPLE_VALUES.items():
                path = path.replace("{" + name + "}", value)
            cases.append(pytest.param(f"/{prefix}{path}", methods, id=f"/{prefix}{template}"))
    return cases


def test_index_lists_the_services(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200, response.text
    assert set(response.json()["services"]) == {"activity", "segmentation", "calendar-sync"}


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/activity/nope",
        "/segmentation/nope",
        "/calendar-sync/nope",
        "/activityx",
        "/activity/activities/x/y/z",
        "/docs",
        "/openapi.json",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_path_is_a_404_problem(client: TestClient, method: str, path: str) -> None:
    assert_problem(client.request(method, path), 404)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_wrong_method_at_the_root_is_a_405_problem(client: TestClient, method: str) -> None:
    response = client.request(method, "/")
    assert_problem(response, 405)
    assert allowed(response) == {"GET"}, response.headers.get("allow")


@pytest.mark.parametrize(("path", "methods"), documented_paths())
def test_wrong_method_names_every_method_of_the_path(
    client: TestClient, path: str, methods: set[str]
) -> None:
    wrong = next(m for m in ("DELETE", "PATCH", "PUT", "POST", "GET") if m not in methods)
    response = client.request(wrong, path)
    assert_problem(response, 405)
    assert allowed(response) == methods, (
        f"{wrong} {path}: Allow {response.headers.get('allow')!r}, "
        f"the document has {sorted(methods)}"
    )
