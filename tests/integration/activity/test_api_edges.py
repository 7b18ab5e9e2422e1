"""The activity API at its edges: what the first release let in and then choked on.

Each value below once got a 201 and then stopped a read model, the calendar feed or a move;
now it is refused at the door with a 422 naming the field, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from activity.api import ActivityApi, create_app
from activity.application import ActivityApplication
from activity.projections import ActivityReadModel
from activity.read_api import read_router
from activity.service import caught_up
from crm_contracts.enums import Segment
from crm_platform.auth import Authenticator, AuthSettings
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.clock import ManualClock
from tests.support.people import ANNA
from tests.support.problems import refused_fields

ANNA_H = {"X-Dev-User": ANNA.user_id, "X-Dev-Roles": "consultant"}
# Every control character the door refuses: C0 but tab, LF and CR; DEL and C1.
FORBIDDEN = [
    chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))
]


@pytest.fixture
def api(app: ActivityApplication, read_model: ActivityReadModel, clock: ManualClock) -> ActivityApi:
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    return ActivityApi(
        app=app,
        auth=auth,
        extra_routers=[read_router(read_model, auth, clock, caught_up(app, read_model))],
    )


@pytest.fixture
def client(api: ActivityApi, add_customer: Callable[..., Any]) -> Iterator[TestClient]:
    add_customer("c-small", "Kiosken", Segment.D)
    with TestClient(create_app(api), raise_server_exceptions=False) as test_client:
        yield test_client


def plan_body(**overrides: Any) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return {
        "customer_id": "c-small",
        "owner": ANNA.user_id,
        "type": "status_meeting",
        "channel": "phone",
        "subject": "Status på kampagnen",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
    } | overrides


def events(app: ActivityApplication) -> int:
    return int(app.recorder.max_notification_id() or 0)


@pytest.fixture
def manual_now(app: ActivityApplication, clock: ManualClock) -> None:
    # The door judges times by the wall clock; the rules by the application's clock.
    clock.now = datetime.now(UTC)


@pytest.mark.usefixtures("manual_now")
@pytest.mark.parametrize("field", ["subject", "agenda"])
def test_a_nul_in_text_is_refused_and_nothing_is_stored(
    client: TestClient, app: ActivityApplication, field: str
) -> None:
    before = events(app)

    response = client.post("/activities", json=plan_body(**{field: "a\u0000b"}), headers=ANNA_H)

    assert refused_fields(response) == [f"body.{field}"]
    assert events(app) == before


@pytest.mark.usefixtures("manual_now")
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.text(max_size=20),
    bad=st.sampled_from(FORBIDDEN),
    field=st.sampled_from(["subject", "agenda"]),
)
def test_any_control_character_in_text_is_refused(
    client: TestClient, app: ActivityApplication, prefix: str, bad: str, field: str
) -> None:
    before = events(app)

    response = client.post(
        "/activities", json=plan_body(**{field: prefix + bad + "x"}), headers=ANNA_H
    )

    assert f"body.{field}" in refused_fields(response)
    assert events(app) == before


@pytest.mark.usefixtures("manual_now")
def test_tabs_and_line_breaks_are_text(client: TestClient) -> None:
    agenda = "1.\tPris\r\n2.\tPlacering\n— æøå"

    response = client.post("/activities", json=plan_body(agenda=agenda), headers=ANNA_H)

    assert response.status_code == 201, response.text
    assert response.json()["agenda"] == agenda


@pytest.mark.usefixtures("manual_now")
@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        ("9999-12-31T23:00:00Z", "9999-12-31T23:30:00Z"),
        ("1999-12-31T10:00:00Z", "1999-12-31T11:00:00Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z"),
    ],
)
def test_times_outside_2000_to_ten_years_ahead_are_refused(
    client: TestClient, app: ActivityApplication, starts_at: str, ends_at: str
) -> None:
    before = events(app)

    response = client.post(
        "/activities", json=plan_body(starts_at=starts_at, ends_at=ends_at), headers=ANNA_H
    )

    assert refused_fields(response) == ["body.starts_at", "body.ends_at"]
    assert events(app) == before


@pytest.mark.usefixtures("manual_now")
def test_a_move_near_the_end_of_time_is_refused_not_a_500(client: TestClient) -> None:
    planned = client.post("/activities", json=plan_body(), headers=ANNA_H).json()

    response = client.post(
        f"/activities/{planned['id']}/move",
        json={"starts_at": "9999-12-31T23:59:00Z", "reason": "customer_request"},
        headers=ANNA_H,
    )

    assert refused_fields(response) == ["body.starts_at"]


@pytest.mark.usefixtures("manual_now")
@pytest.mark.parametrize(
    "owner", ["anna", "anna@", "anna@example", "an na@example.dk", "a\u0000@x.dk"]
)
def test_an_owner_must_be_an_e_mail_address(
    client: TestClient, app: ActivityApplication, owner: str
) -> None:
    before = events(app)

    response = client.post("/activities", json=plan_body(owner=owner), headers=ANNA_H)

    assert refused_fields(response) == ["body.owner"]
    assert events(app) == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=0.5", "query.to"),
        ("from=1733000000", "query.from"),
        ("from=2026-12-01T10:00:00", "query.from"),
        ("onwer=anna@example.dk", "query.onwer"),
        ("owner=anna%00@example.dk", "query.owner"),
        ("customer_id=a/b", "query.customer_id"),
        ("cursor=%00", "query.cursor"),
    ],
)
def test_odd_query_parameters_are_refused_by_name(
    client: TestClient, query: str, field: str
) -> None:
    response = client.get(f"/activities?{query}", headers=ANNA_H)

    assert refused_fields(response) == [field]


@pytest.mark.usefixtures("manual_now")
def test_location_is_the_full_path_under_the_prefix_the_api_is_served_at(
    api: ActivityApi, add_customer: Callable[..., Any]
) -> None:
    add_customer("c-small", "Kiosken", Segment.D)
    root = FastAPI()
    root.mount("/activity", create_app(api))
    with TestClient(root) as client:
        response = client.post("/activity/activities", json=plan_body(), headers=ANNA_H)

        assert response.status_code == 201
        location = response.headers["Location"]
        assert location == f"/activity/activities/{response.json()['id']}"
        assert client.get(location, headers=ANNA_H).status_code == 200


@pytest.mark.usefixtures("manual_now")
def test_a_key_never_lets_a_caller_past_what_they_may_do_now(
    client: TestClient, api: ActivityApi
) -> None:
    planned = client.post(
        "/activities", json=plan_body(), headers=ANNA_H | {"Idempotency-Key": "k-1"}
    ).json()
    cancel = {"reason": "Kunden har aflyst"}
    first = client.post(
        f"/activities/{planned['id']}/cancel",
        json=cancel,
        headers=ANNA_H | {"Idempotency-Key": "k-2"},
    )
    assert first.status_code == 200
    # Bo repeats Anna's request with her key: a new request of his, judged by the rules.
    bo = {"X-Dev-User": "bo@example.dk", "X-Dev-Roles": "consultant"}

    response = client.post(
        f"/activities/{planned['id']}/cancel", json=cancel, headers=bo | {"Idempotency-Key": "k-2"}
    )

    assert response.status_code == 403
    assert "Idempotent-Replayed" not in response.headers
