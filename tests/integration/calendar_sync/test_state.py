"""The sync state on SQLite and PostgreSQL: the row and the tracking position commit together,
a stale compare-and-set writes nothing; lanes are held by one holder, paused on the service's
clock, leased on the wall clock; an unavailable mailbox marks its due rows; leftovers; an older
table gets the new column; names and the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from calendar_sync.domain import ActivityView, Lifecycle
from calendar_sync.state import Leftover, Pause, SyncRecord, SyncState
from crm_contracts.enums import ActivityType, Channel, SyncStatus
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging import Delivery
from eventsourcing.persistence import IntegrityError
from psycopg import sql

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


def test_a_lane_is_held_by_one_holder_until_released_or_expired(state: SyncState) -> None:
    due = replace(ROW, status=SyncStatus.PENDING, due_at=NOW)
    assert state.save(due, expected_revision=0)
    wall = datetime(2030, 1, 1, tzinfo=UTC)
    assert state.due_lanes(NOW, wall) == ["anna@example.dk"]
    lease = wall + timedelta(seconds=60)
    first = state.claim("anna@example.dk", "a", lease_until=lease, wall=wall, now=NOW)
    assert first is not None
    assert (first.holder, first.checks, first.budget) == ("a", 0, {})
    # Held: nobody else gets it, and it is not offered as due.
    assert state.claim("anna@example.dk", "b", lease_until=lease, wall=wall, now=NOW) is None
    assert state.due_lanes(NOW, wall) == []
    assert state.renew("anna@example.dk", "a", lease + timedelta(seconds=30))
    assert not state.renew("anna@example.dk", "b", lease)
    # A holder that died: its lease runs out on the wall clock, then the lane is free.
    later = lease + timedelta(seconds=31)
    taken = state.claim("anna@example.dk", "b", lease_until=later, wall=later, now=NOW)
    assert taken is not None
    assert not state.renew("anna@example.dk", "a", later)  # the old holder must stop
    state.release(
        "anna@example.dk",
        "b",
        budget={"29000000": 3},
        pause=Pause(NOW + timedelta(seconds=120), "throttled"),
        now=NOW,
    )
    paused = state.mailbox("anna@example.dk")
    assert paused is not None
    assert (paused.holder, paused.reason, paused.budget) == (None, "throttled", {"29000000": 3})
    # Paused on the service's clock: not due, not claimable, until the pause is over.
    assert state.due_lanes(NOW, later) == []
    assert state.claim("anna@example.dk", "c", lease_until=later, wall=later, now=NOW) is None
    resumed = NOW + timedelta(seconds=121)
    assert state.due_lanes(resumed, later) == ["anna@example.dk"]
    # The row due already waits for the pause: the pause's end is the next thing to wake for.
    assert state.next_due(NOW) == NOW + timedelta(seconds=120)
    assert state.next_due(resumed) is None


def test_an_unavailable_mailbox_marks_its_due_rows_and_keeps_them_due(state: SyncState) -> None:
    due = replace(ROW, status=SyncStatus.PENDING, due_at=NOW)
    done = replace(
        ROW, activity_id="11111111-1111-4111-8111-111111111111", view=replace(VIEW, activity_id="x")
    )
    assert state.save(due, expected_revision=0)
    assert state.save(done, expected_revision=0)
    assert state.mark_unavailable("anna@example.dk", "ErrorInvalidUser", NOW) == 1
    assert state.mark_unavailable("anna@example.dk", "ErrorInvalidUser", NOW) == 0  # idempotent
    marked = state.get(ROW.activity_id)
    assert marked is not None
    assert (marked.status, marked.error, marked.due_at) == (
        SyncStatus.MAILBOX_UNAVAILABLE,
        "ErrorInvalidUser",
        NOW,
    )
    untouched = state.get(done.activity_id)
    assert untouched is not None
    assert untouched.status is SyncStatus.SYNCED
    wall = datetime(2030, 1, 1, tzinfo=UTC)
    assert state.claim("anna@example.dk", "a", lease_until=wall, wall=wall, now=NOW)
    state.release(
        "anna@example.dk",
        "a",
        budget={},
        pause=Pause(NOW + timedelta(hours=1), "unavailable", "ErrorInvalidUser", NOW, 1),
        now=NOW,
    )
    assert state.unavailable_counts() == {"ErrorInvalidUser": 1}
    (troubled,) = state.troubled_mailboxes()
    assert (troubled.code, troubled.since, troubled.checks) == ("ErrorInvalidUser", NOW, 1)
    inbound = state.inbound(Delivery("t", 0, 0), "other", "cust-1", "anna@example.dk")
    assert inbound.mailbox_code == "ErrorInvalidUser"


def test_leftovers_are_kept_with_the_save_and_settled_by_a_later_one(state: SyncState) -> None:
    assert state.save(
        ROW, expected_revision=0, leftover=Leftover("bo@example.dk", "evt-b", ROW.activity_id)
    )
    assert state.leftovers("bo@example.dk") == [Leftover("bo@example.dk", "evt-b", ROW.activity_id)]
    assert state.due_lanes(NOW, NOW) == ["bo@example.dk"]  # the old mailbox has work
    again = replace(ROW, mailbox="bo@example.dk", event_id="evt-b", revision=2)
    assert state.save(again, expected_revision=1, settled=[("bo@example.dk", "evt-b")])
    assert state.leftovers("bo@example.dk") == []


def test_a_table_from_before_the_lanes_gets_due_at(store: StoreLocation) -> None:
    first = SyncState(store.env())
    with first.transaction() as tx:
        tx.execute("DROP INDEX IF EXISTS calendar_sync_entries_due")
        tx.execute("ALTER TABLE {t}entries DROP COLUMN due_at")
    first.close()
    migrated = SyncState(store.env())
    try:
        assert migrated.save(replace(ROW, due_at=NOW), expected_revision=0)
        found = migrated.get(ROW.activity_id)
        assert found is not None
        assert found.due_at == NOW
    finally:
        migrated.close()


def test_a_lane_takes_up_its_due_rows_marked_once_with_the_customers_name(
    store: StoreLocation,
) -> None:
    announced: list[str | None] = []
    state = SyncState(store.env(), on_due=announced.append)
    try:
        state.apply_customer("cust-1", customer("cust-1", "Bager Hansen ApS"), Delivery("c", 0, 0))
        fresh = replace(ROW, event_id=None, change_key=None, status=SyncStatus.PENDING, due_at=NOW)
        assert state.save(fresh, expected_revision=0)
        later = replace(fresh, activity_id="a-later", due_at=NOW + timedelta(minutes=1))
        assert state.save(later, expected_revision=0)
        elsewhere = replace(fresh, activity_id="a-bo", view=replace(VIEW, owner="bo@example.dk"))
        assert state.save(elsewhere, expected_revision=0)
        assert announced == ["anna@example.dk", "anna@example.dk", "bo@example.dk"]

        taken = state.take_due("anna@example.dk", NOW)
        assert [(d.record.activity_id, d.first, d.customer_name) for d in taken] == [
            (ROW.activity_id, True, "Bager Hansen ApS")
        ]
        assert taken[0].record == replace(fresh, revision=1)
        # Taken up again (a lane died, or its write lost a race): a create may have been sent.
        again = state.take_due("anna@example.dk", NOW + timedelta(minutes=1))
        assert [(d.record.activity_id, d.first) for d in again] == [
            (ROW.activity_id, False),
            ("a-later", True),
        ]
        # A writer outside the lanes marks the row before it may create.
        state.mark_tried("a-bo")
        assert [d.first for d in state.take_due("bo@example.dk", NOW)] == [False]
    finally:
        state.close()


def test_rows_from_before_the_mark_count_as_tried(store: StoreLocation) -> None:
    first = SyncState(store.env())
    assert first.save(replace(ROW, event_id=None, due_at=NOW), expected_revision=0)
    with first.transaction() as tx:
        tx.execute("ALTER TABLE {t}entries DROP COLUMN create_tried")
    first.close()
    migrated = SyncState(store.env())
    try:
        # An older version may have sent a create whose outcome it never recorded.
        assert [d.first for d in migrated.take_due("anna@example.dk", NOW)] == [False]
        assert migrated.save(replace(ROW, activity_id="a-new", due_at=NOW), expected_revision=0)
        taken = migrated.take_due("anna@example.dk", NOW)
        assert {d.record.activity_id: d.first for d in taken} == {
            ROW.activity_id: False,
            "a-new": True,
        }
    finally:
        migrated.close()


def test_due_lanes_include_the_ones_we_hold(state: SyncState) -> None:
    assert state.save(replace(ROW, due_at=NOW), expected_revision=0)
    lease = NOW + timedelta(seconds=60)
    assert state.claim("anna@example.dk", "ours", lease_until=lease, wall=NOW, now=NOW)
    assert state.due_lanes(NOW, NOW) == []
    assert state.due_lanes(NOW, NOW, ours="theirs") == []
    assert state.due_lanes(NOW, NOW, ours="ours") == ["anna@example.dk"]


def test_a_save_that_makes_a_row_due_is_announced_to_every_process(
    postgres_dsn: str, pg_schema: str
) -> None:
    # NOTIFY is PostgreSQL's; on SQLite the service runs in one process.
    store = StoreLocation(postgres_dsn=postgres_dsn, schema=pg_schema)
    store.ensure_schema()
    state = SyncState(store.env())
    try:
        with psycopg.connect(postgres_dsn, autocommit=True) as other:
            other.execute(sql.SQL("LISTEN {}").format(sql.Identifier(state.due_channel)))
            assert state.save(replace(ROW, due_at=NOW), expected_revision=0)
            # Not due: nothing to announce.
            assert state.save(replace(ROW, revision=2), expected_revision=1)
            moved = replace(ROW, revision=3, due_at=NOW, view=replace(VIEW, owner="bo@example.dk"))
            assert state.save(
                moved,
                expected_revision=2,
                leftover=Leftover("anna@example.dk", "evt-1", ROW.activity_id),
            )
            heard = [n.payload for n in other.notifies(timeout=5.0, stop_after=3)]
        assert heard == ["anna@example.dk", "bo@example.dk", "anna@example.dk"]
    finally:
        state.close()


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
