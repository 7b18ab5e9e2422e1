"""Going live over HTTP, on SQLite and PostgreSQL: the previous CRM's held activities arrive,
show in the customer's timeline, are published as imported registrations, and a second run of
the same file adds nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from activity.api import ActivityApi, create_app
from activity.application import ActivityApplication
from activity.domain import Activity
from activity.projections import ActivityReadModel, follower
from activity.read_api import read_router
from activity.relay import to_message
from activity.service import caught_up
from crm_contracts.activity import ActivityRegistered
from crm_contracts.enums import Segment
from crm_platform.auth import Authenticator, AuthSettings
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.people import ANNA, MIA


def as_user(principal: Any) -> dict[str, str]:
    return {
        "X-Dev-User": principal.user_id,
        "X-Dev-Roles": ",".join(sorted(r.value for r in principal.roles)),
    }


CSV = {"content-type": "text/csv"}
FILE = (
    "external_id,customer_id,owner,type,channel,held_at,note,subject\n"
    "old-1,k1,anna@example.dk,status_meeting,physical,2026-01-20T10:00+01:00,Gennemgik planen,\n"
    "old-2,k1,anna@example.dk,Oplægsmøde,Fysisk,2026-02-03,Oplæg sendt bagefter,Oplæg 2026\n"
    "old-3,unknown,anna@example.dk,contact,phone,2026-02-04,Ringede om budget,\n"
    "old-4,k1,anna@example.dk,contact,phone,2099-01-01,Fra fremtiden,\n"
).encode()


@pytest.fixture
def client(
    app: ActivityApplication, read_model: ActivityReadModel, clock: ManualClock
) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    api = ActivityApi(
        app=app,
        auth=auth,
        extra_routers=[read_router(read_model, auth, clock, caught_up(app, read_model))],
    )
    with TestClient(create_app(api), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def customers(add_customer: Callable[..., Any]) -> None:
    add_customer("k1", "Bageriet", Segment.B)


def test_past_activities_are_imported_once_with_bad_rows_named(
    client: TestClient, app: ActivityApplication, read_model: ActivityReadModel
) -> None:
    response = client.post("/imports", content=FILE, headers={**as_user(MIA), **CSV})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["imported"], body["unchanged"]) == (2, 0)
    assert [(r["line"], r["external_id"]) for r in body["rejected"]] == [(4, "old-3"), (5, "old-4")]
    assert "not in the registry" in body["rejected"][0]["reasons"][0]

    again = client.post("/imports", content=FILE, headers={**as_user(MIA), **CSV}).json()
    assert (again["imported"], again["unchanged"], len(again["rejected"])) == (0, 2, 2)

    follower(app, read_model).catch_up()
    timeline = client.get("/customers/k1/timeline", headers=as_user(ANNA)).json()["items"]
    assert [t["event"] for t in timeline] == ["registered", "registered"]
    assert timeline[0]["summary"].startswith("Oplægsmøde importeret, holdt 03.02.2026 kl. 12:00")

    [first, _] = read_model.query("SELECT activity_id FROM {t}activities ORDER BY starts_at")
    activity = app.activity(UUID(first["activity_id"]))
    assert (activity.status, activity.registered, activity.imported) == ("completed", True, True)
    [created] = app.events.get(activity.id)
    message = to_message(created, None)
    assert isinstance(message, ActivityRegistered)
    assert (message.imported, message.held_at) == (True, activity.completed_at)
    assert isinstance(created, Activity.Registered)


@pytest.mark.parametrize(
    ("who", "headers", "status", "code"),
    [
        (ANNA, CSV, 403, "forbidden"),
        (MIA, {"content-type": "application/json"}, 415, "unsupported_media_type"),
    ],
)
def test_only_a_manager_imports_and_only_csv(
    client: TestClient, who: Any, headers: dict[str, str], status: int, code: str
) -> None:
    response = client.post("/imports", content=FILE, headers={**as_user(who), **headers})
    assert (response.status_code, response.json()["code"]) == (status, code)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "file"),
        (b"external_id,note\n", "file"),
        ("\u00e6".encode("latin-1") + b"\n", "encoding"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(
    client: TestClient, content: bytes, code: str
) -> None:
    response = client.post("/imports", content=content, headers={**as_user(MIA), **CSV})
    assert (response.status_code, response.json()["code"]) == (422, code)
