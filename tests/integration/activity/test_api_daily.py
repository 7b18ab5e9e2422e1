"""What consultants need daily, over HTTP on SQLite and PostgreSQL: editing a planned
activity, a warning for a double booking, times out in UTC with `Z` and days in queries as
Copenhagen days, and the R8 report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from activity.api import ActivityApi, create_app
from activity.application import ActivityApplication
from activity.projections import ActivityReadModel, follower
from activity.read_api import read_router
from activity.service import caught_up
from crm_contracts.enums import Segment
from crm_platform.auth import Authenticator, AuthSettings
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.people import ANNA, BO, MIA
from tests.support.people import dev_headers as as_user

ANNA_H, BO_H, MIA_H = as_user(ANNA), as_user(BO), as_user(MIA)


@pytest.fixture
def client(
    app: ActivityApplication, read_model: ActivityReadModel, clock: ManualClock
) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    feed = follower(app, read_model)

    def overlaps(activity: Any) -> list[Any]:
        feed.catch_up()  # the projector, which runs beside the API
        return read_model.overlapping(
            activity.owner, activity.starts_at, activity.ends_at, activity.id
        )

    api = ActivityApi(
        app=app,
        auth=auth,
        extra_routers=[read_router(read_model, auth, clock, caught_up(app, read_model))],
        overlaps=overlaps,
    )
    with TestClient(create_app(api), raise_server_exceptions=False) as test_client:
        test_client.catch_up = feed.catch_up  # type: ignore[attr-defined]
        yield test_client


@pytest.fixture(autouse=True)
def customers(add_customer: Callable[..., Any]) -> None:
    add_customer("c-small", "Kiosken", Segment.D)


def plan(client: TestClient, start: datetime, minutes: int = 60, **extra: Any) -> dict[str, Any]:
    body = {
        "customer_id": "c-small",
        "owner": ANNA.user_id,
        "type": "status_meeting",
        "channel": "phone",
        "subject": "Status på kampagnen",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(minutes=minutes)).isoformat(),
        **extra,
    }
    response = client.post("/activities", json=body, headers=ANNA_H)
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_planned_activitys_subject_and_agenda_are_edited_and_kept_in_history(
    client: TestClient, clock: ManualClock
) -> None:
    planned = plan(client, clock.now + timedelta(days=1), agenda="Budget")
    edit = f"/activities/{planned['id']}/edit"

    response = client.post(edit, json={"subject": "Sommerkampagne"}, headers=ANNA_H)
    assert response.status_code == 200, response.json()
    assert (response.json()["subject"], response.json()["agenda"]) == ("Sommerkampagne", "Budget")
    response = client.post(edit, json={"agenda": None}, headers=ANNA_H)
    assert (response.json()["agenda"], response.json()["version"]) == (None, 3)

    history = client.get(f"/activities/{planned['id']}/history", headers=ANNA_H).json()
    assert [h["event"] for h in history] == ["planned", "edited", "edited"]
    assert history[1]["details"]["subject"] == "Sommerkampagne"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "validation_error"),
        ({"subject": None}, 422, "validation_error"),
        ({"subject": "Status på kampagnen"}, 422, "unchanged"),
        ({"subject": "Ny", "owner": "bo@example.dk"}, 422, "validation_error"),
    ],
)
def test_an_edit_says_what_to_change(
    client: TestClient, clock: ManualClock, body: dict[str, Any], status: int, code: str
) -> None:
    planned = plan(client, clock.now + timedelta(days=1))
    response = client.post(f"/activities/{planned['id']}/edit", json=body, headers=ANNA_H)
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_only_the_owner_or_a_manager_edits_and_only_while_planned(
    client: TestClient, clock: ManualClock
) -> None:
    planned = plan(client, clock.now + timedelta(days=1))
    edit = f"/activities/{planned['id']}/edit"
    assert client.post(edit, json={"subject": "X"}, headers=BO_H).status_code == 403
    assert client.post(edit, json={"subject": "X"}, headers=MIA_H).status_code == 200
    cancelled = client.post(
        f"/activities/{planned['id']}/cancel", json={"reason": "Kunden aflyste"}, headers=ANNA_H
    )
    assert cancelled.status_code == 200
    refused = client.post(edit, json={"subject": "Y"}, headers=ANNA_H)
    assert (refused.status_code, refused.json()["code"]) == (409, "invalid_transition")


def test_a_double_booking_is_accepted_with_a_warning(
    client: TestClient, clock: ManualClock
) -> None:
    ten = (clock.now + timedelta(days=1)).replace(hour=10, minute=0)
    first = plan(client, ten)
    assert first["warnings"] == []

    second = plan(client, ten + timedelta(minutes=30))
    assert second["warnings"] == [{"code": "overlap", "activity_id": first["id"]}]
    back_to_back = plan(client, ten + timedelta(hours=1, minutes=30))
    assert back_to_back["warnings"] == []  # [10:00, 11:00) and [11:30, 12:30) share nothing

    moved = client.post(
        f"/activities/{back_to_back['id']}/move",
        json={"starts_at": (ten + timedelta(minutes=45)).isoformat(), "reason": "consultant"},
        headers=ANNA_H,
    ).json()
    assert {w["activity_id"] for w in moved["warnings"]} == {first["id"], second["id"]}


def test_times_go_out_in_utc_with_z_and_a_day_in_a_query_is_a_copenhagen_day(
    client: TestClient, clock: ManualClock
) -> None:
    # 00:30 in Copenhagen on 4 March is 23:30 UTC on 3 March; sent with its +01:00 offset.
    planned = plan(client, datetime(2026, 3, 4, 0, 30, tzinfo=ZoneInfo("Europe/Copenhagen")))
    assert planned["starts_at"] == "2026-03-03T23:30:00Z"
    got = client.get(f"/activities/{planned['id']}", headers=ANNA_H).json()
    assert got["starts_at"] == "2026-03-03T23:30:00Z"
    history = client.get(f"/activities/{planned['id']}/history", headers=ANNA_H).json()
    assert history[0]["at"].endswith("Z")
    assert history[0]["details"]["starts_at"] == "2026-03-03T23:30:00Z"

    client.catch_up()  # type: ignore[attr-defined]
    on_the_4th = client.get(
        "/activities", params={"from": "2026-03-04", "to": "2026-03-04"}, headers=ANNA_H
    )
    assert on_the_4th.status_code == 200, on_the_4th.json()
    assert [a["activity_id"] for a in on_the_4th.json()["items"]] == [planned["id"]]
    on_the_3rd = client.get(
        "/activities", params={"from": "2026-03-03", "to": "2026-03-03"}, headers=ANNA_H
    )
    assert on_the_3rd.json()["items"] == []


def test_the_r8_report_is_filtered_by_owner_and_segment(client: TestClient) -> None:
    assert client.get("/reports/without-future-activity", headers=ANNA_H).json() == []
    bad = client.get("/reports/without-future-activity?segment=Z", headers=ANNA_H)
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")
    bad = client.get("/reports/without-future-activity?prioritized_only=true", headers=ANNA_H)
    assert bad.status_code == 422
