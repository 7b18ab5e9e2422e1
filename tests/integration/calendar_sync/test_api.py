"""The operations API over a running service with the Graph fake: sync status per activity
(a mailbox that refuses us included), reconciliation that repairs drift and duplicates without
resurrecting what a user deleted and sees what a user restored, a paused lane, ops endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from calendar_sync.graph import ACTIVITY_PROPERTY_ID
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


def tag_of(activity_id: str) -> list[dict[str, str]]:
    return [{"id": ACTIVITY_PROPERTY_ID, "value": activity_id}]


def test_reconcile_repairs_drift_and_never_resurrects_a_deleted_event(
    harness: Harness, client: TestClient, fake: GraphFake
) -> None:
    # Graph refuses one create for good: the activity is failed (and parked), never made.
    never_made = Activity()
    fake.faults.fail_next("refuse", method="POST")
    harness.send(never_made.planned())
    wait_until(
        lambda: (r := harness.record(never_made)) is not None and r.status is SyncStatus.FAILED,
        message="the refused plan recorded",
    )
    untouched, edited, deleted, restored, duplicated = (Activity() for _ in range(5))
    harness.send(*(a.planned() for a in (untouched, edited, deleted, restored, duplicated)))
    for activity in (untouched, edited, deleted, restored, duplicated):
        harness.applied(activity)

    edited_id = harness.record(edited).event_id  # type: ignore[union-attr]
    deleted_id = harness.record(deleted).event_id  # type: ignore[union-attr]
    restored_id = harness.record(restored).event_id  # type: ignore[union-attr]
    assert edited_id is not None
    assert deleted_id is not None
    assert restored_id is not None
    moved = {"dateTime": "2026-03-02T07:00:00", "timeZone": "UTC"}
    fake.update_as_user(ANNA, edited_id, {"subject": "Min egen titel", "start": moved})
    fake.delete_as_user(ANNA, deleted_id)
    fake.delete_as_user(ANNA, restored_id)
    # A second tagged copy (an answer lost long ago), and a tag of an activity nobody knows.
    copy = {k: v for k, v in fake.event(ANNA, edited_id).items() if k in ("start", "end")}
    fake.store.create(ANNA, copy | {"singleValueExtendedProperties": tag_of(str(duplicated.id))})
    fake.store.create(ANNA, copy | {"singleValueExtendedProperties": tag_of("not-ours")})

    assert (
        client.post("/sync/reconcile", params={"owner": ANNA}, headers=as_user(ANNA)).status_code
        == 403
    )
    report = client.post("/sync/reconcile", params={"owner": ANNA}, headers=MANAGER)
    assert report.status_code == 200
    assert report.json()["outcomes"] == {
        "unchanged": 2,
        "repaired": 1,
        "deleted_in_outlook": 2,
        "created": 1,
        "orphaned": 1,
    }
    assert report.json()["duplicates_removed"] == 1
    events = {e["id"]: e for e in tagged(fake, ANNA)}
    assert deleted_id not in events
    assert restored_id not in events
    assert len(events) == 5  # untouched, edited, duplicated, never_made and the orphan
    assert len(fake.crm_events(ANNA)[str(duplicated.id)]) == 1
    repaired = events[edited_id]
    assert repaired["subject"] == "Statusmøde: Annonceplan forår – cust-1"
    assert repaired["start"]["dateTime"].startswith("2026-03-02T09:00:00")
    assert harness.record(deleted).status is SyncStatus.DELETED_IN_OUTLOOK  # type: ignore[union-attr]
    assert harness.record(never_made).status is SyncStatus.SYNCED  # type: ignore[union-attr]

    # The consultant moves one back out of Deleted Items: reconciliation sees it.
    fake.restore_as_user(ANNA, restored_id)
    again = client.post("/sync/reconcile", params={"owner": ANNA}, headers=MANAGER).json()
    assert again["outcomes"] == {
        "unchanged": 4,
        "kept_deleted": 1,
        "restored": 1,
        "orphaned": 1,
    }
    back = harness.record(restored)
    assert back is not None
    assert (back.status, back.event_id) == (SyncStatus.SYNCED, restored_id)
    third = client.post("/sync/reconcile", params={"owner": ANNA}, headers=MANAGER).json()
    assert third["outcomes"] == {"unchanged": 5, "kept_deleted": 1, "orphaned": 1}

    # A later change of the deleted one does not bring it back either ...
    harness.send(deleted.moved(deleted.starts_at + timedelta(days=3)))
    assert harness.applied(deleted).status is SyncStatus.DELETED_IN_OUTLOOK
    # ... while the restored one is kept up to date again.
    harness.send(restored.moved(restored.starts_at + timedelta(days=1)))
    assert harness.applied(restored).status is SyncStatus.SYNCED
    assert fake.event(ANNA, restored_id)["start"]["dateTime"].startswith("2026-03-03T09:00")
    assert len(tagged(fake, ANNA)) == 6  # the five, and the restored one


def test_a_throttled_mailbox_is_paused_and_reconciliation_asks_to_come_back_later(
    harness: Harness, client: TestClient, fake: GraphFake
) -> None:
    act = Activity()
    harness.send(act.planned())
    harness.applied(act)
    fake.faults.retry_after = None  # Graph's whole seconds: far longer than a test waits
    fake.faults.fail_next("throttle")
    later = Activity()
    harness.send(later.planned())
    paused = wait_until(
        lambda: (m := harness.service.state.mailbox(ANNA)) is not None and m.reason and m,
        message="the mailbox paused",
    )
    assert paused.reason == "throttled"
    assert paused.paused_until is not None
    pause = (paused.paused_until - harness.service.clock()).total_seconds()
    assert 20 <= pause <= 300  # Graph's Retry-After, not a thread's sleep
    answer = client.post("/sync/reconcile", params={"owner": ANNA}, headers=MANAGER)
    assert answer.status_code == 409
    assert answer.json()["code"] == "mailbox_busy"
    assert 20 <= int(answer.headers["Retry-After"]) <= 301
    listed = client.get("/sync/mailboxes", headers=MANAGER)
    assert listed.status_code == 200
    assert [(m["mailbox"], m["reason"]) for m in listed.json()] == [(ANNA, "throttled")]
    assert client.get("/sync/mailboxes", headers=as_user(ANNA)).status_code == 403
    record = harness.record(later)
    assert record is not None
    assert record.status is SyncStatus.PENDING
    status = client.get(f"/sync/activities/{later.id}", headers=as_user(ANNA)).json()
    assert status["status"] == "pending"


def test_sync_status_shows_a_mailbox_that_refuses_us(
    harness: Harness, client: TestClient, fake: GraphFake
) -> None:
    fake.mailbox_unavailable(BO, "access_denied")
    act = Activity(owner=BO)
    harness.send(act.planned())
    wait_until(
        lambda: (
            (r := harness.record(act)) is not None and r.status is SyncStatus.MAILBOX_UNAVAILABLE
        ),
        message="the mailbox refusal recorded",
    )
    body = client.get(f"/sync/activities/{act.id}", headers=as_user(BO)).json()
    assert (body["status"], body["error"], body["failed_version"]) == (
        "mailbox_unavailable",
        "ErrorAccessDenied",
        1,
    )
    # The rows are marked first, the lane is released with its pause right after.
    listed = wait_until(
        lambda: client.get("/sync/mailboxes", headers=MANAGER).json(),
        message="the mailbox listed",
    )
    assert [(m["mailbox"], m["reason"], m["code"]) for m in listed] == [
        (BO, "unavailable", "ErrorAccessDenied")
    ]
    metrics = client.get("/metrics").text
    assert 'crm_calendar_sync_mailboxes_unavailable{code="ErrorAccessDenied"} 1.0' in metrics


def test_operations_endpoints(harness: Harness, client: TestClient) -> None:
    act = Activity()
    harness.send(act.planned())
    harness.applied(act)
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json()
    # The lane counts a write just after it commits the row `applied` waits for.
    written = 'crm_calendar_sync_written_total{status="synced"} 1.0'

    def counted() -> str | None:
        text = client.get("/metrics").text
        return text if written in text else None

    metrics = wait_until(counted, message="the write counted")
    assert (
        'crm_calendar_sync_applied_total{event="ActivityPlanned",outcome="pending"} 1.0' in metrics
    )
    assert 'crm_calendar_sync_graph_responses_total{method="POST",status="201"}' in metrics
    assert "crm_calendar_sync_graph_throttled_total" in metrics
    assert "crm_calendar_sync_lag_seconds" in metrics
