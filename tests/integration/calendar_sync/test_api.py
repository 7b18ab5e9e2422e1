"""The operations API over a running service with the Graph fake: sync status per activity,
reconciliation that repairs drift without resurrecting what a user deleted, ops endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from crm_contracts.enums import SyncStatus
from crm_platform.auth import Authenticator, AuthMode, AuthSettings
from fastapi.testclient import TestClient

from tests.fakes import GraphFake
from tests.integration.calendar_sync.support import ANNA, BO, Activity, Harness, tagged
from tests.support.polling import wait_until

MANAGER = {"X-Dev-User": "mia@example.dk", "X-Dev-Roles": "sales_manager"}


def as_user(user: str, roles: str = "consultant") -> dict[str, str]:
    return {"X-Dev-User": user, "X-Dev-Roles": roles}


@pytest.fixture
def client(harness: Harness) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode=AuthMode.DEV), production_settings_present=False)
    with TestClient(harness.service.api(auth)) as running:
        yield running


def test_sync_status_of_an_activity(harness: Harness, client: TestClient) -> None:
    act = Activity()
    harness.send(act.planned())
    record = harness.applied(act)
    answer = client.get(f"/sync/activities/{act.id}", headers=as_user(ANNA))
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "synced"
    assert body["outlook_event_id"] == record.event_id
    assert (body["activity_version"], body["mailbox"], body["error"]) == (1, ANNA, None)
    assert client.get(f"/sync/activities/{act.id}", headers=as_user(BO)).status_code == 404
    assert client.get(f"/sync/activities/{act.id}", headers=MANAGER).status_code == 200
    unknown = client.get(f"/sync/activities/{Activity().id}", headers=MANAGER)
    assert unknown.status_code == 404


def test_reconcile_repairs_drift_and_never_resurrects_a_deleted_event(
    harness: Harness, client: TestClient, fake: GraphFake
) -> None:
    untouched, edited, deleted, never_made = (Activity() for _ in range(4))
    harness.send(untouched.planned(), edited.planned(), deleted.planned())
    for activity in (untouched, edited, deleted):
        harness.applied(activity)
    # Graph throttles every request while one plan arrives: it fails and is dead-lettered.
    fake.faults.throttle_ratio = 1.0
    harness.send(never_made.planned())
    wait_until(
        lambda: (r := harness.record(never_made)) is not None and r.status is SyncStatus.FAILED,
        timeout=30,
        message="the failed plan recorded",
    )
    wait_until(lambda: _dead_lettered(harness), message="the plan dead-lettered")
    fake.faults.throttle_ratio = 0.0

    edited_id = harness.record(edited).event_id  # type: ignore[union-attr]
    deleted_id = harness.record(deleted).event_id  # type: ignore[union-attr]
    assert edited_id is not None
    assert deleted_id is not None
    moved = {"dateTime": "2026-03-02T07:00:00", "timeZone": "UTC"}
    fake.update_as_user(ANNA, edited_id, {"subject": "Min egen titel", "start": moved})
    fake.delete_as_user(ANNA, deleted_id)

    assert (
        client.post("/sync/reconcile", params={"owner": ANNA}, headers=as_user(ANNA)).status_code
        == 403
    )
    report = client.post("/sync/reconcile", params={"owner": ANNA}, headers=MANAGER)
    assert report.status_code == 200
    assert report.json()["outcomes"] == {
        "unchanged": 1,
        "repaired": 1,
        "deleted_in_outlook": 1,
        "created": 1,
    }
    events = {e["id"]: e for e in tagged(fake, ANNA)}
    assert deleted_id not in events
    assert len(events) == 3
    repaired = events[edited_id]
    assert repaired["subject"] == "Statusmøde: Annonceplan forår – cust-1"
    assert repaired["start"]["dateTime"].startswith("2026-03-02T09:00:00")
    assert harness.record(deleted).status is SyncStatus.DELETED_IN_OUTLOOK  # type: ignore[union-attr]
    assert harness.record(never_made).status is SyncStatus.SYNCED  # type: ignore[union-attr]

    again = client.post("/sync/reconcile", params={"owner": ANNA}, headers=MANAGER).json()
    assert again["outcomes"] == {"unchanged": 3, "kept_deleted": 1}
    assert len(tagged(fake, ANNA)) == 3

    # A later change of the deleted one does not bring it back either.
    harness.send(deleted.moved(deleted.starts_at + timedelta(days=3)))
    assert harness.applied(deleted).status is SyncStatus.DELETED_IN_OUTLOOK
    assert len(tagged(fake, ANNA)) == 3


def _dead_lettered(harness: Harness) -> bool:
    # The test retry policy makes three attempts; after the third failure comes the DLQ.
    return bool(harness.service.metrics.failures.labels("GraphError")._value.get() >= 3)


def test_operations_endpoints(harness: Harness, client: TestClient) -> None:
    act = Activity()
    harness.send(act.planned())
    harness.applied(act)
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json()
    metrics = client.get("/metrics").text
    assert (
        'crm_calendar_sync_applied_total{event="ActivityPlanned",outcome="synced"} 1.0' in metrics
    )
    assert 'crm_calendar_sync_graph_responses_total{method="POST",status="201"}' in metrics
    assert "crm_calendar_sync_graph_throttled_total" in metrics
    assert "crm_calendar_sync_lag_seconds" in metrics
