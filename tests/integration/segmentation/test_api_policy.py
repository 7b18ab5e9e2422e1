"""The policy over HTTP: read it with its version as ETag, replace it with If-Match, get 202
and a recomputation to poll until every customer has the segment the new policy gives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from crm_platform.auth import Authenticator, AuthSettings
from fastapi.testclient import TestClient
from segmentation.api import SegmentationApi, create_app
from segmentation.application import SegmentationApplication
from segmentation.recompute import RecomputeRunner

from tests.integration.segmentation.test_api import ANNA_H, MIA_H, register
from tests.support.polling import wait_until


@pytest.fixture
def client(app: SegmentationApplication) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    with TestClient(create_app(SegmentationApi(app=app, auth=auth))) as test_client:
        yield test_client


def lowered(client: TestClient) -> tuple[dict[str, Any], str]:
    current = client.get("/segmentation/policy", headers=ANNA_H)
    policy = dict(current.json())
    policy["thresholds"] = {**policy["thresholds"], "A": "350000.00"}
    return policy, current.headers["ETag"]


def test_a_policy_change_is_accepted_and_its_recomputation_can_be_polled_to_done(
    client: TestClient, runner: RecomputeRunner
) -> None:
    register(client, "c-1", potential_dkk="360000")
    register(client, "c-2", potential_dkk="100")
    assert client.get("/customers/c-1", headers=ANNA_H).json()["segment"] == "B"
    policy, etag = lowered(client)
    assert etag == '"1"'

    stop = threading.Event()
    worker = threading.Thread(
        target=runner.run_forever, args=(stop,), kwargs={"poll_interval": 0.05}
    )
    worker.start()
    try:
        response = client.put(
            "/segmentation/policy", json=policy, headers={**MIA_H, "If-Match": etag}
        )
        assert response.status_code == 202, response.json()
        assert response.headers["ETag"] == '"2"'
        body = response.json()
        assert (
            response.headers["Location"]
            == f"/segmentation/recomputations/{body['recomputation_id']}"
        )
        assert body["policy_version"] == 2

        def finished() -> dict[str, Any] | None:
            job = client.get(response.headers["Location"], headers=ANNA_H).json()
            return dict(job) if job["state"] == "done" else None

        job = wait_until(finished, message="the recomputation is done")
    finally:
        stop.set()
        worker.join(timeout=10)
    assert (job["total"], job["done"], job["changed"]) == (2, 2, 1)
    customer = client.get("/customers/c-1", headers=ANNA_H).json()
    assert (customer["segment"], customer["policy_version"]) == ("A", 2)
    assert client.get("/segmentation/policy", headers=ANNA_H).headers["ETag"] == '"2"'


def test_policy_refusals(client: TestClient) -> None:
    policy, _ = lowered(client)
    stale = client.put("/segmentation/policy", json=policy, headers={**MIA_H, "If-Match": '"7"'})
    assert stale.status_code == 412
    forbidden = client.put("/segmentation/policy", json=policy, headers=ANNA_H)
    assert forbidden.status_code == 403
    bad = {**policy, "thresholds": {**policy["thresholds"], "A": "-1"}}
    invalid = client.put("/segmentation/policy", json=bad, headers=MIA_H)
    assert invalid.status_code == 422
    unknown = client.get(
        "/segmentation/recomputations/00000000-0000-0000-0000-000000000000", headers=ANNA_H
    )
    assert unknown.status_code == 404


def test_a_repeated_policy_put_under_one_key_is_adopted_once(client: TestClient) -> None:
    policy, _ = lowered(client)
    headers = {**MIA_H, "Idempotency-Key": "policy-1"}
    first = client.put("/segmentation/policy", json=policy, headers=headers)
    again = client.put("/segmentation/policy", json=policy, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["recomputation_id"] == first.json()["recomputation_id"]
    assert client.get("/segmentation/policy", headers=ANNA_H).headers["ETag"] == '"2"'
