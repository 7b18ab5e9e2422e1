"""The sync state on SQLite and PostgreSQL: the row and the tracking position commit together,
a stale compare-and-set writes nothing, failures keep the wanted view, and the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from calendar_sync.domain import ActivityView, Lifecycle
from calendar_sync.state import SyncRecord, SyncState
from crm_contracts.enums import ActivityType, Channel, SyncStatus
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging import Delivery
from eventsourcing.persistence import IntegrityError

from tests.integration.calendar_sync.support import customer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VIEW = ActivityView(
    activity_id="6f1c1b7e-8a55-4b0e-9d0c-0b8f3e0f9d21",
    customer_id="cust-1",
    owner="anna@example.dk",
    type=ActivityType.CONTACT,
    channel=Channel.PHONE,
    subject="Opfølgning",
    agenda=None,
    starts_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    ends_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    lifecycle=Lifecycle.PLANNED,
    version=1,
)
ROW = SyncRecord(
    activity_id=VIEW.activity_id,
    view=VIEW,
    version=1,
    mailbox="anna@example.dk",
    event_id="evt-1",
    change_key="ck-1",
    status=SyncStatus.SYNCED,
    error=None,
    error_version=None,
    shown_name=None,
    revision=1,
    updated_at=NOW,
)


@pytest.fixture
def state(store: StoreLocation) -> Iterator[SyncState]:
    view = SyncState(store.env())
    yield view
    view.close()


def test_a_row_and_its_tracking_position_commit_together(state: SyncState) -> None:
    first = Delivery("activities", 0, 0)
    assert state.save(ROW, expected_revision=0, track=first)
    assert state.get(ROW.activity_id) == ROW
    assert state.has_seen(first.tracking_name, 0)
    # Someone else inserted it meanwhile: nothing is written, the position neither.
    second = Delivery("activities", 0, 1)
    assert not state.save(ROW, expected_revision=0, track=second)
    assert not state.has_seen(second.tracking_name, 1)
    moved = replace(ROW, version=2, event_id="evt-2", revision=2)
    assert state.save(moved, expected_revision=1, track=second)
    assert not state.save(replace(moved, event_id="evt-3"), expected_revision=1)
    assert state.get(ROW.activity_id) == moved
    # A position already recorded refuses the whole transaction.
    with pytest.raises(IntegrityError):
        state.save(replace(moved, event_id="evt-9"), expected_revision=2, track=second)
    assert state.get(ROW.activity_id) == moved


def test_a_failure_keeps_the_wanted_view_but_not_the_applied_version(state: SyncState) -> None:
    wanted = replace(VIEW, subject="Ny plan", version=1)
    state.record_failure(wanted, "GraphError: 429 TooManyRequests", NOW)
    failed = state.get(VIEW.activity_id)
    assert failed is not None
    assert (failed.status, failed.version, failed.error_version) == (SyncStatus.FAILED, 0, 1)
    assert failed.view == wanted
    assert (failed.mailbox, failed.revision, failed.event_id) == ("anna@example.dk", 1, None)
    state.record_failure(wanted, "GraphError: 429 TooManyRequests", NOW)
    again = state.get(VIEW.activity_id)
    assert again is not None
    assert again.revision == 2


def test_stale_names_and_the_outbox(state: SyncState) -> None:
    assert state.save(ROW, expected_revision=0)
    assert state.stale_names() == []  # no name known: the id is the best there is
    state.apply_customer("cust-1", customer("cust-1", "Bageriet Ørsted", 2), Delivery("c", 0, 0))
    assert state.customer_name("cust-1") == "Bageriet Ørsted"
    state.apply_customer("cust-1", customer("cust-1", "Gammelt navn", 1), Delivery("c", 0, 1))
    assert state.customer_name("cust-1") == "Bageriet Ørsted"  # an older snapshot loses
    assert state.stale_names("cust-1") == [ROW.activity_id]
    assert state.save(replace(ROW, shown_name="Bageriet Ørsted", revision=2), expected_revision=1)
    assert state.stale_names() == []

    pending = state.unpublished()
    assert [(r.activity_id, revision) for r, revision in pending] == [(ROW.activity_id, 2)]
    state.mark_published([(ROW.activity_id, 2)])
    assert state.unpublished() == []
    assert state.save(replace(ROW, status=SyncStatus.REMOVED, revision=3), expected_revision=2)
    assert [revision for _r, revision in state.unpublished()] == [3]
