"""The activity API over HTTP, on SQLite and on PostgreSQL: status codes, error bodies, ETags,
idempotency, who may do what, and that refused requests leave the event log unchanged. How
each guide rule reaches a client (its status, code and field) is in test_api_rules.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from activity.api import ActivityApi, create_app
from activity.application import ActivityApplication
from crm_contracts.enums import Segment
from crm_platform.auth import Authenticator, AuthSettings
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.people import ANNA, BO, MIA
from tests.support.people import dev_headers as as_user

Client = TestClient


ANNA_H, BO_H, MIA_H = as_user(ANNA), as_user(BO), as_user(MIA)


@pytest.fixture
def client(app: ActivityApplication) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    web = create_app(
        ActivityApi(app=app, auth=auth, checks={"store": app.recorder.max_notification_id})
    )
    with TestClient(web, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def customers(add_customer: Callable[..., Any]) -> None:
    add_customer("c-small", "Kiosken", Segment.D)


def plan_body(clock: ManualClock, **overrides: Any) -> dict[str, Any]:
    start = clock.now + timedelta(days=1)
    body = {
        "customer_id": "c-small",
        "owner": ANNA.user_id,
        "type": "status_meeting",
        "channel": "phone",
        "subject": "Status på kampagnen",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
    }
    body.update(overrides)
    return body


def planned(client: TestClient, clock: ManualClock, **overrides: Any) -> dict[str, Any]:
    response = client.post("/activities", json=plan_body(clock, **overrides), headers=ANNA_H)
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.usefixtures("customers")
def test_plan_answers_201_with_location_etag_and_danish_labels(
    client: TestClient,
    clock: ManualClock,
) -> None:
    response = client.post("/activities", json=plan_body(clock), headers=ANNA_H)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/activities/{body['id']}"
    assert (body["type_label"], body["channel_label"]) == ("Statusmøde", "Telefonisk")
    fetched = client.get(f"/activities/{body['id']}", headers=BO_H)
    assert fetched.status_code == 200
    assert fetched.json() == body


BAD_INPUT = [
    ("malformed JSON", b'{"customer_id": ', "malformed_json", None),
    ("not UTF-8", b'{"customer_id": "K\xf8be"}', "malformed_json", None),
    ("unknown enum", {"type": "lunch"}, "validation_error", "body.type"),
    ("missing field", {"subject": None}, "validation_error", "body.subject"),
    ("subject over 200", {"subject": "x" * 201}, "validation_error", "body.subject"),
    ("agenda over 10,000", {"agenda": "x" * 10_001}, "validation_error", "body.agenda"),
    ("naive time", {"starts_at": "2026-03-05T10:00:00"}, "validation_error", "body.starts_at"),
    ("unknown field", {"colour": "red"}, "validation_error", "body.colour"),
    ("owner over 100", {"owner": "a" * 96 + "@x.dk"}, "validation_error", "body.owner"),
]


@pytest.mark.usefixtures("customers")
@pytest.mark.parametrize(
    ("case", "change", "code", "field"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_gets_a_problem_naming_the_field_and_stores_nothing(
    client: TestClient,
    app: ActivityApplication,
    clock: ManualClock,
    case: str,
    change: Any,
    code: str,
    field: str | None,
) -> None:
    before = app.recorder.max_notification_id()
    if isinstance(change, bytes):
        response = client.post(
            "/activities", content=change, headers=ANNA_H | {"content-type": "application/json"}
        )
    else:
        body = plan_body(clock, **change)
        body = {k: v for k, v in body.items() if v is not None}
        response = client.post("/activities", json=body, headers=ANNA_H)
    # 400 when the body cannot be read at all, 422 when what it says is wrong.
    assert response.status_code == (400 if code == "malformed_json" else 422)
    error = response.json()
    assert error["code"] == code
    if field:
        assert field in error["detail"]
    assert "Traceback" not in response.text
    assert app.recorder.max_notification_id() == before


@pytest.mark.usefixtures("customers")
def test_unknown_customer_and_unknown_activity(client: TestClient, clock: ManualClock) -> None:
    response = client.post(
        "/activities", json=plan_body(clock, customer_id="nobody"), headers=ANNA_H
    )
    assert (response.status_code, response.json()["code"]) == (422, "unknown_customer")
    missing = "00000000-0000-4000-8000-000000000000"
    response = client.get(f"/activities/{missing}", headers=ANNA_H)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    # Only a UUID is an activity's path, so `registrations` never reads as a malformed id.
    response = client.get("/activities/not-a-uuid", headers=ANNA_H)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    response = client.get("/activities/registrations", headers=ANNA_H)
    assert (response.status_code, response.headers["Allow"]) == (405, "POST")


@pytest.mark.usefixtures("customers")
def test_a_consultant_cannot_complete_a_colleagues_activity_but_a_manager_can(
    client: TestClient,
    app: ActivityApplication,
    clock: ManualClock,
) -> None:
    activity = planned(client, clock)
    before = app.recorder.max_notification_id()
    body = {"note": "Kunden vil booke mere i foråret", "next_step": "Ring i marts"}
    response = client.post(f"/activities/{activity['id']}/complete", json=body, headers=BO_H)
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    assert app.recorder.max_notification_id() == before
    response = client.post(f"/activities/{activity['id']}/complete", json=body, headers=MIA_H)
    assert response.status_code == 200
    history = client.get(f"/activities/{activity['id']}/history", headers=ANNA_H).json()
    assert [(h["event"], h["actor"]) for h in history] == [
        ("planned", ANNA.user_id),
        ("completed", MIA.user_id),
    ]
    assert history[1]["why"] == body["note"]


@pytest.mark.usefixtures("customers")
def test_consultants_plan_only_for_themselves_and_only_managers_reassign(
    client: TestClient,
    clock: ManualClock,
) -> None:
    response = client.post("/activities", json=plan_body(clock, owner=BO.user_id), headers=ANNA_H)
    assert response.status_code == 403
    activity = planned(client, clock)
    response = client.post(
        f"/activities/{activity['id']}/reassign", json={"owner": BO.user_id}, headers=ANNA_H
    )
    assert response.status_code == 403
    response = client.post(
        f"/activities/{activity['id']}/reassign", json={"owner": BO.user_id}, headers=MIA_H
    )
    assert (response.status_code, response.json()["owner"]) == (200, BO.user_id)


def test_requests_without_a_caller_are_401(client: TestClient) -> None:
    response = client.get("/activities/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert "WWW-Authenticate" in response.headers


@pytest.mark.usefixtures("customers")
def test_if_match_a_stale_etag_is_412_and_the_current_one_works(
    client: TestClient,
    clock: ManualClock,
) -> None:
    activity = planned(client, clock)
    move = {"starts_at": (clock.now + timedelta(days=2)).isoformat(), "reason": "no_answer"}
    url = f"/activities/{activity['id']}/move"
    response = client.post(url, json=move, headers=ANNA_H | {"If-Match": '"1"'})
    assert (response.status_code, response.headers["ETag"]) == (200, '"2"')
    move["starts_at"] = (clock.now + timedelta(days=3)).isoformat()
    response = client.post(url, json=move, headers=ANNA_H | {"If-Match": '"1"'})
    assert (response.status_code, response.json()["code"]) == (412, "stale_version")
    response = client.post(url, json=move, headers=ANNA_H | {"If-Match": "banana"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "header.If-Match"
    # A weak tag never matches (RFC 9110 compares If-Match strongly), not even the current one.
    response = client.post(url, json=move, headers=ANNA_H | {"If-Match": 'W/"2"'})
    assert (response.status_code, response.json()["code"]) == (412, "stale_version")
    for key in ("", " padded ", "tab\tkey", "k" * 201):
        response = client.post(url, json=move, headers=ANNA_H | {"Idempotency-Key": key})
        assert response.status_code == 422, key
        assert response.json()["errors"][0]["field"] == "header.Idempotency-Key"


@pytest.mark.usefixtures("customers")
def test_idempotency_key_replays_the_first_response_and_refuses_another_body(
    client: TestClient,
    app: ActivityApplication,
    clock: ManualClock,
) -> None:
    headers = ANNA_H | {"Idempotency-Key": "plan-42"}
    first = client.post("/activities", json=plan_body(clock), headers=headers)
    after_first = app.recorder.max_notification_id()
    again = client.post("/activities", json=plan_body(clock), headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert app.recorder.max_notification_id() == after_first
    other = client.post(
        "/activities", json=plan_body(clock, subject="Noget andet"), headers=headers
    )
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")


@pytest.mark.usefixtures("customers")
def test_as_of_shows_the_activity_as_it_was(client: TestClient, clock: ManualClock) -> None:
    activity = planned(client, clock)
    planned_at = clock.now
    clock.advance(hours=2)
    new_start = clock.now + timedelta(days=5)
    client.post(
        f"/activities/{activity['id']}/move",
        json={"starts_at": new_start.isoformat(), "reason": "customer_request"},
        headers=ANNA_H,
    )
    then = client.get(
        f"/activities/{activity['id']}",
        params={"as_of": (planned_at + timedelta(hours=1)).isoformat()},
        headers=ANNA_H,
    )
    assert then.json()["starts_at"] == activity["starts_at"].replace("+00:00", "Z")
    assert then.headers["ETag"] == '"1"'
    before = client.get(
        f"/activities/{activity['id']}",
        params={"as_of": (planned_at - timedelta(hours=1)).isoformat()},
        headers=ANNA_H,
    )
    assert before.status_code == 404


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    response = client.post(
        "/activities",
        content=b"x" * 1_100_000,
        headers=ANNA_H | {"content-type": "application/json"},
    )
    assert (response.status_code, response.json()["code"]) == (413, "request_too_large")


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "crm_activity_commands_total" in metrics.text
