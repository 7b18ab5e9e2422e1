"""The read-model routes over HTTP: lists with paging, overdue, timeline, the R8 report and
the moves report, which shows a consultant only their own figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from activity.api import ActivityApi, create_app
from activity.application import ActivityApplication
from activity.projections import ActivityReadModel, follower
from activity.read_api import read_router
from crm_contracts.enums import Segment
from crm_platform.auth import Authenticator, AuthSettings
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.people import ANNA, BO, MIA, SERVICE

ANNA_H = {"X-Dev-User": ANNA.user_id, "X-Dev-Roles": "consultant"}
BO_H = {"X-Dev-User": BO.user_id, "X-Dev-Roles": "consultant"}
MIA_H = {"X-Dev-User": MIA.user_id, "X-Dev-Roles": "sales_manager"}


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
    api = ActivityApi(app=app, auth=auth, extra_routers=[read_router(read_model, auth, clock)])
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
