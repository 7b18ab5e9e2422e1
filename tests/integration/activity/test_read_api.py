"""The read-model routes over HTTP: lists with paging, overdue, timeline, the R8 report and
the moves report, which shows a consultant only their own figures."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from activity import read_api
from activity.api import ActivityApi, create_app
from activity.application import ActivityApplication
from activity.projections import ActivityReadModel, follower
from activity.read_api import read_router
from activity.service import caught_up
from crm_contracts.enums import Segment
from crm_platform.auth import Authenticator, AuthSettings
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.people import ANNA, BO, MIA, SERVICE

ANNA_H = {"X-Dev-User": ANNA.user_id, "X-Dev-Roles": "consultant"}
BO_H = {"X-Dev-User": BO.user_id, "X-Dev-Roles": "consultant"}
MIA_H = {"X-Dev-User": MIA.user_id, "X-Dev-Roles": "sales_manager"}


# Told each time a read asks whether the read models have caught up.
asked = threading.Event()


@pytest.fixture
def client(
    app: ActivityApplication,
    read_model: ActivityReadModel,
    clock: ManualClock,
    add_customer: Callable[..., Any],
) -> Iterator[TestClient]:
    add_customer("c-prio", "Bager Hansen ApS", Segment.A)
    add_customer("c-small", "Kiosken", Segment.D)
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    check = caught_up(app, read_model)

    def checked(position: int) -> bool:
        asked.set()
        return check(position)

    api = ActivityApi(
        app=app, auth=auth, extra_routers=[read_router(read_model, auth, clock, checked)]
    )
    asked.clear()
    with TestClient(create_app(api), raise_server_exceptions=False) as test_client:
        yield test_client


def plan(
    client: TestClient,
    clock: ManualClock,
    headers: dict[str, str],
    owner: str,
    days: int,
    customer: str = "c-small",
) -> dict[str, Any]:
    start = clock.now + timedelta(days=days)
    response = client.post(
        "/activities",
        headers=headers,
        json={
            "customer_id": customer,
            "owner": owner,
            "type": "status_meeting",
            "channel": "phone",
            "subject": f"Status dag {days}",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
        },
    )
    assert response.status_code == 201
    return dict(response.json())


def test_lists_page_by_start_time_and_reports_answer(
    client: TestClient,
    app: ActivityApplication,
    read_model: ActivityReadModel,
    clock: ManualClock,
) -> None:
    planned = [plan(client, clock, ANNA_H, ANNA.user_id, days) for days in (3, 1, 2, 5, 4)]
    moved = planned[0]
    client.post(
        f"/activities/{moved['id']}/move",
        headers=ANNA_H,
        json={"starts_at": (clock.now + timedelta(days=9)).isoformat(), "reason": "no_answer"},
    )
    plan(client, clock, BO_H, BO.user_id, 6)
    follower(app, read_model).catch_up()

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"owner": ANNA.user_id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/activities", params=params, headers=BO_H).json()
        seen += [item["subject"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Status dag 1", "Status dag 2", "Status dag 4", "Status dag 5", "Status dag 3"]
    bad = client.get("/activities", params={"cursor": "nonsense"}, headers=ANNA_H)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")

    clock.advance(days=2, hours=12)
    overdue = client.get("/reports/overdue", params={"owner": ANNA.user_id}, headers=ANNA_H).json()
    assert [i["subject"] for i in overdue["items"]] == ["Status dag 1", "Status dag 2"]

    timeline = client.get("/customers/c-small/timeline", headers=ANNA_H).json()
    assert timeline["items"][0]["event"] == "planned"
    assert "flyttet" in timeline["items"][1]["summary"]

    # The customer watch opens c-prio's R8 gap (prioritized, nothing planned) as it looks.
    app.watch_future_activity("c-prio", SERVICE)
    follower(app, read_model).catch_up()
    without = client.get("/reports/without-future-activity", headers=ANNA_H).json()
    assert [(c["customer_id"], c["segment"], c["why"]) for c in without] == [
        ("c-prio", "A", "became_prioritized")
    ]

    mine = client.get("/reports/moves", headers=ANNA_H).json()
    assert [o["owner"] for o in mine["owners"]] == [ANNA.user_id]
    assert (mine["total"], mine["by_reason"]) == (1, {"no_answer": 1})
    bos = client.get("/reports/moves", headers=BO_H).json()
    assert (bos["total"], [o["owner"] for o in bos["owners"]]) == (0, [BO.user_id])
    everyone = client.get("/reports/moves", headers=MIA_H).json()
    assert {o["owner"] for o in everyone["owners"]} == {ANNA.user_id, BO.user_id}


# -- read your own writes ---------------------------------------------------------------


def test_a_read_at_a_commands_log_position_waits_for_the_read_models(
    client: TestClient, app: ActivityApplication, read_model: ActivityReadModel, clock: ManualClock
) -> None:
    response = client.post(
        "/activities",
        headers=ANNA_H,
        json={
            "customer_id": "c-small",
            "owner": ANNA.user_id,
            "type": "status_meeting",
            "channel": "phone",
            "subject": "Læs din egen skrivning",
            "starts_at": (clock.now + timedelta(days=1)).isoformat(),
            "ends_at": (clock.now + timedelta(days=1, hours=1)).isoformat(),
        },
    )
    assert response.status_code == 201
    position = int(response.headers["Log-Position"])
    assert position == app.recorder.max_notification_id()

    def project_once_the_read_has_looked() -> None:
        # A projector that lags: it catches up only after the read has found it behind.
        if asked.wait(timeout=10):
            follower(app, read_model).catch_up()

    thread = threading.Thread(target=project_once_the_read_has_looked)
    thread.start()
    try:
        page = client.get(
            "/activities", params={"owner": ANNA.user_id, "min_position": position}, headers=ANNA_H
        )
    finally:
        thread.join()

    assert page.status_code == 200, page.text
    assert [i["subject"] for i in page.json()["items"]] == ["Læs din egen skrivning"]


def test_a_read_model_that_does_not_catch_up_in_time_answers_503(
    client: TestClient, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read_api, "CATCH_UP_WAIT_S", 0.05)
    planned = plan(client, clock, ANNA_H, ANNA.user_id, 1)

    response = client.get("/reports/overdue", params={"min_position": 10**9}, headers=ANNA_H)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["code"] == "not_caught_up"
    assert planned["id"]


def test_events_the_read_models_do_not_follow_do_not_hold_a_read_up(
    client: TestClient,
    app: ActivityApplication,
    read_model: ActivityReadModel,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(read_api, "CATCH_UP_WAIT_S", 0.05)
    start = clock.now + timedelta(days=1)
    response = client.post(
        "/activities",
        # The key's record is saved last: a position the projector never tracks.
        headers={**ANNA_H, "Idempotency-Key": "laes-1"},
        json={
            "customer_id": "c-small",
            "owner": ANNA.user_id,
            "type": "status_meeting",
            "channel": "phone",
            "subject": "Med nøgle",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    position = int(response.headers["Log-Position"])
    follower(app, read_model).catch_up()
    assert (read_model.position(app.name) or 0) < position

    page = client.get("/activities", params={"min_position": position}, headers=ANNA_H)

    assert page.status_code == 200, page.text
    assert [i["subject"] for i in page.json()["items"]] == ["Med nøgle"]
