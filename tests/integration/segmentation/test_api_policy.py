"""The policy over HTTP: read it with its version as ETag, replace it with If-Match, get 202
and a recomputation to poll until every customer has the segment the new policy gives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from crm_contracts.enums import Segment
from crm_platform.auth import Authenticator, AuthSettings
from crm_platform.values import MONEY_PATTERN
from fastapi.testclient import TestClient
from segmentation.api import SegmentationApi, create_app
from segmentation.application import SegmentationApplication
from segmentation.policy import MEETING_TYPES, TARGET_SEGMENTS
from segmentation.policy_schemas import MAX_BAND
from segmentation.recompute_worker import RecomputeRunner

from tests.integration.segmentation.test_api import ANNA_H, MIA_H, register
from tests.support.polling import wait_until


@pytest.fixture
def client(app: SegmentationApplication) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    with TestClient(create_app(SegmentationApi(app=app, auth=auth))) as test_client:
        yield test_client


def lowered(client: TestClient) -> tuple[dict[str, Any], str]:
    current = client.get("/policy", headers=ANNA_H)
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
        response = client.put("/policy", json=policy, headers={**MIA_H, "If-Match": etag})
        assert response.status_code == 202, response.json()
        assert response.headers["ETag"] == '"2"'
        body = response.json()
        assert response.headers["Location"] == f"/recomputations/{body['recomputation_id']}"
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
    assert client.get("/policy", headers=ANNA_H).headers["ETag"] == '"2"'


def test_policy_refusals(client: TestClient) -> None:
    policy, _ = lowered(client)
    stale = client.put("/policy", json=policy, headers={**MIA_H, "If-Match": '"7"'})
    assert stale.status_code == 412
    forbidden = client.put("/policy", json=policy, headers=ANNA_H)
    assert forbidden.status_code == 403
    bad = {**policy, "thresholds": {**policy["thresholds"], "A": "-1"}}
    invalid = client.put("/policy", json=bad, headers=MIA_H)
    assert invalid.status_code == 422
    unknown = client.get("/recomputations/00000000-0000-0000-0000-000000000000", headers=ANNA_H)
    assert unknown.status_code == 404


def test_a_repeated_policy_put_under_one_key_is_adopted_once(client: TestClient) -> None:
    policy, _ = lowered(client)
    headers = {**MIA_H, "Idempotency-Key": "policy-1"}
    first = client.put("/policy", json=policy, headers=headers)
    again = client.put("/policy", json=policy, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["recomputation_id"] == first.json()["recomputation_id"]
    assert client.get("/policy", headers=ANNA_H).headers["ETag"] == '"2"'


# -- the body's shape: documented, and checked at the door ---------------------------------


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rpartition("/")[2]]
    return schema


def test_the_document_states_the_policys_shape(client: TestClient) -> None:
    document = client.app.openapi()  # type: ignore[attr-defined]
    body = document["paths"]["/policy"]["put"]["requestBody"]
    assert body["required"] is True
    policy = resolve(document, body["content"]["application/json"]["schema"])
    thresholds = resolve(document, policy["properties"]["thresholds"])
    targets = resolve(document, policy["properties"]["targets"])
    row = resolve(document, targets["properties"]["A"])
    band = resolve(document, row["properties"]["status_meeting"])
    segment = resolve(document, policy["properties"]["prioritized"]["items"])

    assert policy["required"] == ["thresholds", "targets", "prioritized"]
    for schema in (policy, thresholds, targets, row, band):
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
    for schema in (thresholds, targets, row, band):
        assert schema["required"] == list(schema["properties"])
    assert thresholds["required"] == ["A", "B", "C"]
    assert {s["pattern"] for s in thresholds["properties"].values()} == {MONEY_PATTERN}
    assert targets["required"] == [s.value for s in TARGET_SEGMENTS]
    assert row["required"] == [m.value for m in MEETING_TYPES]
    for bound in (band["properties"]["min"], band["properties"]["max"]):
        assert (bound["type"], bound["minimum"], bound["maximum"]) == ("integer", 0, MAX_BAND)
    assert policy["properties"]["prioritized"]["type"] == "array"
    assert segment["enum"] == [s.value for s in Segment]
    # The members GET adds are taken and ignored, so a GET body can be PUT back.
    assert set(policy["properties"]) - set(policy["required"]) == {
        "version",
        "adopted_at",
        "adopted_by",
        "effective_on",
        "recomputation_id",
    }


def test_what_get_adds_is_ignored_whatever_it_holds(client: TestClient) -> None:
    policy, etag = lowered(client)
    policy.update(version="draft", adopted_at=5, adopted_by=None, recomputation_id=[1])

    response = client.put("/policy", json=policy, headers={**MIA_H, "If-Match": etag})

    assert response.status_code == 202, response.json()
    assert response.json()["policy_version"] == 2


def test_a_threshold_sent_as_a_number_is_refused_with_its_own_code(client: TestClient) -> None:
    """Money is a decimal string, as everywhere in the APIs (crm_platform.values.MoneyIn)."""
    policy, _ = lowered(client)
    policy["thresholds"] = {**policy["thresholds"], "A": 390000}

    response = client.put("/policy", json=policy, headers=MIA_H)

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "money_as_string"
    assert [e["field"] for e in problem["errors"]] == ["body.thresholds.A"]


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (lambda p: {}, {"body.thresholds", "body.targets", "body.prioritized"}),
        (lambda p: {**p, "colour": "blue"}, {"body.colour"}),
        (lambda p: {**p, "thresholds": {**p["thresholds"], "D": "1"}}, {"body.thresholds.D"}),
        (lambda p: {**p, "thresholds": {**p["thresholds"], "B": "-1"}}, {"body.thresholds.B"}),
        (
            lambda p: {**p, "targets": {**p["targets"], "unsegmented": p["targets"]["D"]}},
            {"body.targets.unsegmented"},
        ),
        (lambda p: {**p, "prioritized": ["A", "Z"]}, {"body.prioritized[1]"}),
        (lambda p: {**p, "prioritized": "A"}, {"body.prioritized"}),
    ],
)
def test_a_body_that_does_not_fit_the_document_is_a_validation_error(
    client: TestClient, change: Any, fields: set[str]
) -> None:
    policy, _ = lowered(client)

    response = client.put("/policy", json=change(policy), headers=MIA_H)

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert {e["field"] for e in problem["errors"]} == fields
    assert all(e["message"] and e["type"] for e in problem["errors"])


@pytest.mark.parametrize(
    "band",
    [{"min": 1.5, "max": 2}, {"min": -1, "max": 1}, {"min": 1, "max": MAX_BAND + 1}, {"min": 1}],
)
def test_a_band_is_two_whole_numbers_of_meetings(client: TestClient, band: Any) -> None:
    policy, _ = lowered(client)
    policy["targets"]["B"]["status_meeting"] = band

    response = client.put("/policy", json=policy, headers=MIA_H)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert {e["field"].rpartition(".")[0] for e in response.json()["errors"]} == {
        "body.targets.B.status_meeting"
    }


def test_a_whole_number_may_carry_a_zero_fraction(client: TestClient) -> None:
    """JSON Schema's `integer`, which the document promises: 2.0 is the number 2."""
    policy, etag = lowered(client)
    policy["targets"]["B"]["status_meeting"] = {"min": 2.0, "max": 3}

    response = client.put("/policy", json=policy, headers={**MIA_H, "If-Match": etag})

    assert response.status_code == 202, response.json()
    band = client.get("/policy", headers=ANNA_H).json()["targets"]["B"]
    assert band["status_meeting"] == {"min": 2, "max": 3}


def test_the_rules_across_fields_are_policy_problems(client: TestClient) -> None:
    """What no schema states: thresholds falling strictly, and min <= max in each band."""
    policy, _ = lowered(client)
    policy["thresholds"] = {"A": "140000.00", "B": "390000.00", "C": "45000.00"}
    policy["targets"]["B"]["status_meeting"] = {"min": 3, "max": 1}

    response = client.put("/policy", json=policy, headers=MIA_H)

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "policy"
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [
        ("thresholds", "invalid_policy"),
        ("targets.B.status_meeting", "invalid_policy"),
    ]
    assert "A > B > C > 0" in problem["errors"][0]["message"]
