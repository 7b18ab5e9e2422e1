"""Requests schemathesis sends only as probes, or not at all, asserted for every operation.

schemathesis's content-type probes fail only on a 5xx, it never sends bytes that are not
UTF-8, and it takes `?to=0.5` for a bad date-time only by chance. So, for every operation the
documents list:
- a JSON body sent as another media type → 415 problem (RFC 9110 §15.5.16);
- a body that is not UTF-8, or not JSON at all → 400 problem: the content's syntax is wrong,
  which is 400's meaning (§15.5.1); 422 says the syntax is right (§15.5.21);
- a query parameter the operation does not document → 422 problem;
- a date-time query parameter that is not an RFC 3339 date-time with an offset (`0.5`, a
  Unix timestamp, a bare date, month 13) → 422 problem, not a time pydantic guessed; a bare
  date is taken where the document says the parameter takes a day as well.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fuzz.problems import assert_problem
from tests.fuzz.schemas import SCHEMAS
from tests.fuzz.system import AUTH_HEADERS, USER, EmbeddedSystem

pytestmark = pytest.mark.fuzz

SAMPLE_VALUES = {
    "activity_id": str(uuid.UUID(int=1)),
    "recomputation_id": str(uuid.UUID(int=1)),
    "customer_id": "fuzz-a",
    "owner": USER,
}
# RFC 9110: 400 is "malformed request syntax"; 422 means the syntax was fine.
MALFORMED_BODY_STATUS = 400
BARE_DATE = "2026-03-02"
NOT_DATE_TIMES = ["0.5", "1800000000", BARE_DATE, "2026-13-01T00:00:00Z"]


@pytest.fixture(scope="module")
def client(embedded: EmbeddedSystem) -> Iterator[TestClient]:
    with TestClient(embedded.root, raise_server_exceptions=False) as client:
        client.headers.update(AUTH_HEADERS)
        yield client


def operations() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(method, concrete path under the root, label, OpenAPI operation) of every operation."""
    for prefix, schema in SCHEMAS.items():
        for template, item in schema.raw_schema["paths"].items():
            path = template
            for name, value in SAMPLE_VALUES.items():
                path = path.replace("{" + name + "}", value)
            for method, operation in item.items():
                if isinstance(operation, dict) and "responses" in operation:
                    label = f"{method.upper()} /{prefix}{template}"
                    yield method.upper(), f"/{prefix}{path}", label, operation


def body_types(operation: dict[str, Any]) -> list[str]:
    return list((operation.get("requestBody") or {}).get("content", {}))


def with_body(media: str) -> list[Any]:
    return [
        pytest.param(method, path, op, id=label)
        for method, path, label, op in operations()
        if media in body_types(op)
    ]


def date_time_queries(*, days: bool = False) -> list[Any]:
    """Each date-time query parameter with each value that is not a date-time (but a bare
    date where the document also takes a day); with `days`, the parameters that take a day
    (YYYY-MM-DD, a Copenhagen day) with a bare date."""
    params = []
    for method, path, label, op in operations():
        for parameter in op.get("parameters", []):
            schema = json.dumps(parameter["schema"])
            if parameter["in"] != "query" or '"date-time"' not in schema:
                continue
            takes_a_day = '"format": "date"' in schema
            if days:
                values = [BARE_DATE] if takes_a_day else []
            else:
                values = [v for v in NOT_DATE_TIMES if not (takes_a_day and v == BARE_DATE)]
            for value in values:
                params.append(
                    pytest.param(
                        method,
                        path,
                        parameter["name"],
                        value,
                        id=f"{label}?{parameter['name']}={value}",
                    )
                )
    return params


@pytest.mark.parametrize(("method", "path", "operation"), with_body("application/json"))
@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded"])
def test_json_body_as_another_media_type_is_415(
    client: TestClient, method: str, path: str, operation: dict[str, Any], media: str
) -> None:
    response = client.request(
        method, path, content=b'{"name": "x"}', headers={"content-type": media}
    )
    assert_problem(response, 415)


@pytest.mark.parametrize(("method", "path", "operation"), with_body("text/csv"))
def test_csv_body_as_json_is_415(
    client: TestClient, method: str, path: str, operation: dict[str, Any]
) -> None:
    response = client.request(
        method, path, content=b'{"name": "x"}', headers={"content-type": "application/json"}
    )
    assert_problem(response, 415)


@pytest.mark.parametrize(("method", "path", "operation"), with_body("application/json"))
@pytest.mark.parametrize(
    "content",
    [b'{"subject": "Caf\xe9"}', b'{"subject": '],
    ids=["latin-1", "truncated"],
)
def test_body_that_is_not_utf8_json_is_400(
    client: TestClient, method: str, path: str, operation: dict[str, Any], content: bytes
) -> None:
    response = client.request(
        method, path, content=content, headers={"content-type": "application/json"}
    )
    assert_problem(response, MALFORMED_BODY_STATUS)


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [pytest.param(m, p, op, id=label) for m, p, label, op in operations()],
)
def test_unknown_query_parameter_is_422(
    client: TestClient, method: str, path: str, operation: dict[str, Any]
) -> None:
    # A body of the right type, so that nothing but the query can be wrong with its media type.
    kwargs: dict[str, Any] = {}
    if "application/json" in body_types(operation):
        kwargs = {"json": {}}
    elif body_types(operation):
        kwargs = {"content": b"", "headers": {"content-type": body_types(operation)[0]}}
    response = client.request(method, path, params={"bogus": "1"}, **kwargs)
    body = assert_problem(response, 422)
    assert "bogus" in json.dumps(body), body


@pytest.mark.parametrize(("method", "path", "name", "value"), date_time_queries())
def test_date_time_query_that_is_not_rfc3339_is_422(
    client: TestClient, method: str, path: str, name: str, value: str
) -> None:
    response = client.request(method, path, params={name: value})
    assert_problem(response, 422)


@pytest.mark.parametrize(("method", "path", "name", "value"), date_time_queries(days=True))
def test_a_bare_date_is_taken_where_the_document_says_so(
    client: TestClient, method: str, path: str, name: str, value: str
) -> None:
    response = client.request(method, path, params={name: value})
    assert response.status_code != 422, response.text
