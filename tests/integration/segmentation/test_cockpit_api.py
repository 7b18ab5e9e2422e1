"""`GET /reports/behind-target` (segmentation's cockpit_api): the customers whose meetings are
behind what their targets expect by today, named, largest shortfall first, and who may see
whose. On SQLite and PostgreSQL.

The clock stands at 2026-03-02 08:00 UTC: day 61 of 365, so a band of 1 expects 0.2 by today.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from crm_contracts.enums import ActivityType
from crm_platform.auth import Authenticator, AuthMode, AuthSettings
from crm_platform.http import install_error_handlers
from crm_platform.http.refusals import install_refusal_handlers
from fastapi import FastAPI
from fastapi.testclient import TestClient
from segmentation.application import SegmentationApplication
from segmentation.attainment import ActivityEventsConsumer
from segmentation.cockpit_api import cockpit_router

from tests.integration.segmentation.test_attainment_support import (
    Feed,
    completed,
    feed,
    planned,
    register,
    utc,
    view,
)
from tests.support.clock import ManualClock
from tests.support.people import ANNA, BO, MIA
from tests.support.people import dev_headers as as_user

__all__ = ["feed", "view"]  # fixtures

D, P, S = (
    ActivityType.DISCOVERY_MEETING,
    ActivityType.PROPOSAL_MEETING,
    ActivityType.STATUS_MEETING,
)


ANNA_H, BO_H, MIA_H = as_user(ANNA), as_user(BO), as_user(MIA)


@pytest.fixture
def client(
    app: SegmentationApplication, view: ActivityEventsConsumer, clock: ManualClock
) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode=AuthMode.DEV), production_settings_present=False)
    web = FastAPI()
    install_error_handlers(web)
    install_refusal_handlers(web)
    web.include_router(cockpit_router(view, app, auth, clock))
    with TestClient(web, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def team(app: SegmentationApplication, clock: ManualClock, feed: Feed) -> None:
    """Anna: c-a (A, ahead) and c-b (B, behind on three types); Bo: c-c (C, behind on all
    four) and c-u (no potential: no targets, never behind)."""
    since = utc(2025, 12, 1, 9)
    register(app, clock, "c-a", potential="390000", on=since)
    register(app, clock, "c-b", potential="200000", on=since)
    register(app, clock, "c-c", potential="50000", on=since, owner=BO.user_id)
    register(app, clock, "c-u", potential=None, on=since, owner=BO.user_id)
    held = [
        planned("a-d", "c-a", D, utc(2026, 1, 5, 9)),
        planned("a-p", "c-a", P, utc(2026, 1, 6, 9)),
        *(planned(f"a-s{i}", "c-a", S, utc(2026, 1, 10 + i, 9)) for i in range(4)),
        planned("b-s", "c-b", S, utc(2026, 2, 1, 9), owner=BO.user_id),
    ]
    for plan in held:
        feed(plan, completed(plan, plan.ends_at))
    # Planned is not held: it does not count.
    feed(planned("b-p", "c-b", P, utc(2026, 4, 1, 9)))


@pytest.mark.usefixtures("team")
def test_a_manager_sees_everyone_behind_the_largest_shortfall_first(client: TestClient) -> None:
    response = client.get("/reports/behind-target", headers=MIA_H)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["year"], body["owner"], body["total"]) == (2026, None, 2)
    assert [(c["customer_id"], c["shortfall"]) for c in body["items"]] == [
        ("c-c", "0.9"),
        ("c-b", "0.6"),
    ]
    c_b = body["items"][1]
    assert (c_b["owner"], c_b["segment"]) == ("anna@example.dk", "B")
    assert [(ln["type"], ln["actual"], ln["expected_by_today"]) for ln in c_b["lines"]] == [
        ("discovery_meeting", 0, "0.2"),
        ("proposal_meeting", 0, "0.2"),
        ("sales_meeting", 0, "0.2"),
    ]
    assert c_b["lines"][0]["type_label"] == "Afdækningsmøde"


@pytest.mark.usefixtures("team")
def test_filters_and_the_limit(client: TestClient) -> None:
    by_owner = client.get("/reports/behind-target?owner=bo@example.dk", headers=MIA_H).json()
    assert [c["customer_id"] for c in by_owner["items"]] == ["c-c"]

    by_segment = client.get("/reports/behind-target?segment=B", headers=MIA_H).json()
    assert [c["customer_id"] for c in by_segment["items"]] == ["c-b"]

    limited = client.get("/reports/behind-target?limit=1", headers=MIA_H).json()
    assert (limited["total"], len(limited["items"])) == (2, 1)

    earlier = client.get("/reports/behind-target?year=2025", headers=MIA_H).json()
    assert earlier["year"] == 2025


@pytest.mark.usefixtures("team")
def test_a_consultant_sees_only_her_own(client: TestClient) -> None:
    own = client.get("/reports/behind-target", headers=ANNA_H)
    assert own.status_code == 200
    assert own.json()["owner"] == "anna@example.dk"
    assert [c["customer_id"] for c in own.json()["items"]] == ["c-b"]

    other = client.get("/reports/behind-target?owner=bo@example.dk", headers=ANNA_H)
    assert other.status_code == 403
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "forbidden"


def test_unknown_parameters_and_bad_values_are_problems(client: TestClient) -> None:
    assert client.get("/reports/behind-target?ownr=x", headers=MIA_H).status_code == 422
    assert client.get("/reports/behind-target?limit=0", headers=MIA_H).status_code == 422
    assert client.get("/reports/behind-target").status_code == 401
