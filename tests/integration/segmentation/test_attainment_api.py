"""The attainment routes over HTTP, on SQLite and PostgreSQL: the customer's year and the team
report as JSON and CSV, and who may see which consultant's numbers.

The clock stands at 2026-03-02 08:00 UTC: day 61 of 365."""

from __future__ import annotations

import csv
import io
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
from segmentation.attainment_api import attainment_router

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
CSV_H = {"Accept": "text/csv"}


@pytest.fixture
def client(
    app: SegmentationApplication, view: ActivityEventsConsumer, clock: ManualClock
) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode=AuthMode.DEV), production_settings_present=False)
    web = FastAPI()
    install_error_handlers(web)
    install_refusal_handlers(web)
    web.include_router(attainment_router(view, app, auth, clock))
    with TestClient(web, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def team(app: SegmentationApplication, clock: ManualClock, feed: Feed) -> None:
    """Anna: c-a (A, on target) and c-b (B, under); Bo: c-c (C) and c-u (no potential)."""
    since = utc(2025, 12, 1, 9)
    register(app, clock, "c-a", potential="390000", on=since)
    register(app, clock, "c-b", potential="200000", on=since)
    register(app, clock, "c-c", potential="50000", on=since, owner=BO.user_id)
    register(app, clock, "c-u", potential=None, on=since, owner=BO.user_id)
    held = [
        planned("a-d", "c-a", D, utc(2026, 1, 5, 9)),
        planned("a-p", "c-a", P, utc(2026, 1, 6, 9)),
        *(planned(f"a-s{i}", "c-a", S, utc(2026, 1, 10 + i, 9)) for i in range(4)),
        # Bo stood in for Anna: it still counts for Anna's customer.
        planned("b-s", "c-b", S, utc(2026, 2, 1, 9), owner=BO.user_id),
    ]
    for plan in held:
        feed(plan, completed(plan, plan.ends_at))
    feed(planned("b-p", "c-b", P, utc(2026, 4, 1, 9)))


@pytest.mark.usefixtures("team")
def test_a_customers_year_as_json_and_as_csv(client: TestClient) -> None:
    response = client.get("/customers/c-b/attainment", headers=ANNA_H)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["year"], body["segment"], body["owner"], body["on_target"]) == (
        2026,
        "B",
        "anna@example.dk",
        False,
    )
    status = next(line for line in body["lines"] if line["type"] == "status_meeting")
    assert status == {
        "type": "status_meeting",
        "type_label": "Statusmøde",
        "counted": True,
        "min": "2.0",
        "max": "2.0",
        "actual": 1,
        "scheduled": 0,
        "remaining": 1,
        "status": "under",
        "expected_by_today": "0.3",
    }
    beside = [line for line in body["lines"] if not line["counted"]]
    assert [(b["type"], b["status"]) for b in beside] == [
        ("contact", "beside"),
        ("unannounced_visit", "beside"),
    ]

    response = client.get("/customers/c-b/attainment?year=2026", headers={**ANNA_H, **CSV_H})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["type"] for r in rows] == [
        "discovery_meeting",
        "proposal_meeting",
        "status_meeting",
        "sales_meeting",
        "contact",
        "unannounced_visit",
    ]
    proposal = rows[1]
    assert (proposal["min"], proposal["max"], proposal["actual"], proposal["scheduled"]) == (
        "1.0",
        "2.0",
        "0",
        "1",
    )
    assert (proposal["status"], proposal["status_label"]) == ("under", "Under mål")
    assert (rows[4]["counted"], rows[4]["min"], rows[4]["remaining"]) == ("no", "", "")


def test_an_unknown_customer_is_404(client: TestClient) -> None:
    response = client.get("/customers/nobody/attainment", headers=ANNA_H)
    assert response.status_code == 404


@pytest.mark.usefixtures("team")
def test_the_team_report_for_a_manager(client: TestClient) -> None:
    response = client.get("/reports/attainment?year=2026", headers=MIA_H)
    assert response.status_code == 200, response.text
    rows = [
        (
            r["owner"],
            r["segment"],
            r["customers"],
            r["on_target"],
            r["share_on_target"],
            r["actual"],
            r["recommended_min"],
            r["recommended_max"],
            r["expected_by_today"],
            r["scheduled"],
        )
        for r in response.json()["rows"]
    ]
    # A: 1, 1-3, 4-6, 0 => 6-10; expected 0.2 + 0.2 + 0.7 (4*61/365 = 0.668) + 0.
    # B: 1, 1-2, 2, 1 => 5-6; expected 0.2 + 0.2 + 0.3 + 0.2. C: 1, 1, 1, 2 => 5-5.
    assert rows == [
        ("anna@example.dk", "A", 1, 1, "1.000", 6, "6.0", "10.0", "1.1", 0),
        ("anna@example.dk", "B", 1, 0, "0.000", 1, "5.0", "6.0", "0.9", 1),
        ("bo@example.dk", "C", 1, 0, "0.000", 0, "5.0", "5.0", "0.9", 0),
        ("bo@example.dk", "unsegmented", 1, 0, "0.000", 0, "0.0", "0.0", "0.0", 0),
    ]
    by_segment = client.get("/reports/attainment?segment=A", headers=MIA_H).json()
    assert [r["owner"] for r in by_segment["rows"]] == ["anna@example.dk"]

    response = client.get("/reports/attainment", headers={**MIA_H, **CSV_H})
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["owner"], r["segment"], r["share_on_target"]) for r in parsed] == [
        ("anna@example.dk", "A", "1.000"),
        ("anna@example.dk", "B", "0.000"),
        ("bo@example.dk", "C", "0.000"),
        ("bo@example.dk", "unsegmented", "0.000"),
    ]


@pytest.mark.usefixtures("team")
def test_a_consultant_sees_only_their_own_rows(client: TestClient) -> None:
    other = client.get("/reports/attainment?owner=anna@example.dk", headers=BO_H)
    assert other.status_code == 403
    own = client.get("/reports/attainment", headers=BO_H).json()
    assert {r["owner"] for r in own["rows"]} == {"bo@example.dk"}
    assert own["owner"] == "bo@example.dk"
    named = client.get("/reports/attainment?owner=Bo@Example.dk", headers=BO_H)
    assert named.status_code == 200
    assert len(named.json()["rows"]) == 2
