"""On the wire, on SQLite and PostgreSQL: the policy where the service's prefix says
(`/segmentation/policy` under `make run`'s `/segmentation`, the doubled first path answering
308), money as decimal strings in and out, times out in UTC with `Z`, days as YYYY-MM-DD."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from crm_platform.auth import Authenticator, AuthSettings
from fastapi import FastAPI
from fastapi.testclient import TestClient
from segmentation.api import SegmentationApi, create_app
from segmentation.application import SegmentationApplication
from segmentation.recompute_worker import RecomputeRunner

from tests.integration.segmentation.test_api import ANNA_H, MIA_H
from tests.support.clock import ManualClock
from tests.support.people import MIA, SERVICE

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture
def web(app: SegmentationApplication) -> Iterator[TestClient]:
    """The service under `/segmentation`, as `make run` serves it."""
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    root = FastAPI()
    root.mount("/segmentation", create_app(SegmentationApi(app=app, auth=auth)))
    with TestClient(root, raise_server_exceptions=False) as client:
        yield client


def test_the_policy_is_at_segmentation_policy(
    web: TestClient, app: SegmentationApplication
) -> None:
    current = web.get("/segmentation/policy", headers=ANNA_H)
    assert current.status_code == 200
    assert current.json()["thresholds"] == {"A": "390000.00", "B": "140000.00", "C": "45000.00"}
    policy = {**current.json(), "prioritized": ["A"]}

    adopted = web.put("/segmentation/policy", json=policy, headers=MIA_H)

    assert adopted.status_code == 202, adopted.json()
    job = adopted.json()["recomputation_id"]
    assert adopted.headers["Location"] == f"/segmentation/recomputations/{job}"
    assert web.get(adopted.headers["Location"], headers=ANNA_H).status_code == 200
    assert web.get("/segmentation/segmentation/nope", headers=ANNA_H).status_code == 404


def test_the_doubled_first_paths_answer_308_to_the_new_ones(web: TestClient) -> None:
    old = web.get("/segmentation/segmentation/policy", headers=ANNA_H, follow_redirects=False)
    assert (old.status_code, old.headers["Location"]) == (308, "/segmentation/policy")
    followed = web.get("/segmentation/segmentation/policy", headers=ANNA_H)
    assert (followed.status_code, followed.json()["version"]) == (200, 1)

    # 308 keeps the method and the body: an old client's PUT still adopts its policy.
    policy = {**followed.json(), "prioritized": ["A"]}
    put = web.put("/segmentation/segmentation/policy", json=policy, headers=MIA_H)
    assert (put.status_code, put.json()["policy_version"]) == (202, 2)

    job = put.json()["recomputation_id"]
    moved = web.get(
        f"/segmentation/segmentation/recomputations/{job}", headers=ANNA_H, follow_redirects=False
    )
    assert (moved.status_code, moved.headers["Location"]) == (
        308,
        f"/segmentation/recomputations/{job}",
    )


def test_the_old_paths_are_not_in_the_document(web: TestClient) -> None:
    document = web.get("/segmentation/openapi.json").json()
    assert {"/policy", "/recomputations/{recomputation_id}"} <= set(document["paths"])
    assert not [p for p in document["paths"] if p.startswith("/segmentation")]


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        (
            "/segmentation/customers",
            "post",
            {"customer_id": "k-2", "name": "X", "potential_dkk": 1},
        ),
        ("/segmentation/customers/k-1/potential", "put", {"amount_dkk": 390000}),
        ("/segmentation/customers/k-1/potential", "put", {"amount_dkk": 390000.0}),
    ],
)
def test_an_amount_sent_as_a_number_is_refused_with_its_own_code(
    web: TestClient, path: str, method: str, body: dict[str, Any]
) -> None:
    web.post("/segmentation/customers", json={"customer_id": "k-1", "name": "K"}, headers=MIA_H)
    response = web.request(method, path, json=body, headers=MIA_H)
    assert (response.status_code, response.json()["code"]) == (422, "money_as_string")


def test_money_leaves_as_decimal_strings_and_times_in_utc_with_z(
    web: TestClient, app: SegmentationApplication, clock: ManualClock
) -> None:
    # The clock in Copenhagen's zone: what leaves is still UTC with Z.
    clock.now = datetime(2026, 3, 2, 9, 30, tzinfo=COPENHAGEN)
    web.post(
        "/segmentation/customers",
        json={"customer_id": "k-1", "name": "Bager", "potential_dkk": "390000"},
        headers=MIA_H,
    )
    clock.now = datetime(2026, 3, 2, 10, 0, tzinfo=COPENHAGEN)
    app.assess_potential(
        SERVICE,
        "k-1",
        amount="140000.5",
        source="discovery_meeting",
        assessed_at=datetime(2026, 3, 2, 9, 45, tzinfo=COPENHAGEN),
    )

    customer = web.get("/segmentation/customers/k-1", headers=ANNA_H).json()
    assert customer["potential_dkk"] == "140000.50"
    assert customer["assessed_at"] == "2026-03-02T08:45:00Z"
    assert customer["updated_at"] == "2026-03-02T09:00:00Z"
    assert DAY.match(customer["segment_since"])
    listed = web.get("/segmentation/customers", headers=ANNA_H).json()["items"][0]
    assert (listed["potential_dkk"], listed["updated_at"]) == ("140000.50", "2026-03-02T09:00:00Z")

    history = web.get("/segmentation/customers/k-1/history", headers=ANNA_H).json()
    assert {h["at"] for h in history} == {"2026-03-02T08:30:00Z", "2026-03-02T09:00:00Z"}
    assessed = [h["details"] for h in history if h["event"] == "potential_assessed"]
    assert [(d["amount"], d["assessed_at"]) for d in assessed] == [
        ("390000.00", "2026-03-02T08:30:00Z"),
        ("140000.50", "2026-03-02T08:45:00Z"),
    ]
    changed = [h["details"] for h in history if h["event"] == "segment_changed"]
    assert all(DAY.match(d["effective_on"]) for d in changed)


def test_the_policy_and_its_recomputation_tell_times_in_utc_with_z(
    web: TestClient, app: SegmentationApplication, clock: ManualClock
) -> None:
    clock.now = datetime(2026, 3, 2, 9, 30, tzinfo=COPENHAGEN)
    policy = {**web.get("/segmentation/policy", headers=ANNA_H).json(), "prioritized": ["A"]}
    accepted = web.put("/segmentation/policy", json=policy, headers=MIA_H).json()
    RecomputeRunner(app).run(app.policy().recomputation_id)  # type: ignore[arg-type]

    adopted = web.get("/segmentation/policy", headers=ANNA_H).json()
    assert adopted["adopted_at"] == "2026-03-02T08:30:00Z"
    assert (adopted["adopted_by"], adopted["effective_on"]) == (MIA.user_id, "2026-03-02")
    job = web.get(
        f"/segmentation/recomputations/{accepted['recomputation_id']}", headers=ANNA_H
    ).json()
    assert job["state"] == "done"
    assert UTC_Z.match(job["started_at"])
    assert job["finished_at"] == "2026-03-02T08:30:00Z"


def test_a_utc_clock_reads_the_same(web: TestClient, clock: ManualClock) -> None:
    clock.now = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    web.post("/segmentation/customers", json={"customer_id": "k-1", "name": "K"}, headers=MIA_H)
    assert web.get("/segmentation/customers/k-1", headers=ANNA_H).json()["updated_at"] == (
        "2026-03-02T08:30:00Z"
    )
