"""The activity handler's one-statement read (position, row, customer name, mailbox) on SQLite
and PostgreSQL: it answers what the separate reads answered; the handler never calls the
calendar, and a tracked position makes no calendar call later either (also one below the
last, e.g. a dead-lettered message redelivered); a name read by the lane is the one shown;
the status relay publishes gathered saves and keeps its gauge."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from calendar_sync.calendar import Calendar, Placed, Remote
from calendar_sync.consumers import ActivityProjection
from calendar_sync.domain import CalendarEntry, CancelMode
from calendar_sync.lanes import Lanes
from calendar_sync.metrics import SyncMetrics
from calendar_sync.projector import Projector
from calendar_sync.relay import StatusRelay
from calendar_sync.service import ClockPace
from calendar_sync.state import SyncState
from crm_contracts.cloudevents import decode, encode
from crm_contracts.topics import SOURCE_ACTIVITY
from crm_contracts.wire import WireMessage
from crm_platform.eventstore import StoreLocation
from crm_platform.follower import Waker
from crm_platform.messaging import Delivery
from crm_platform.parking import ParkingLot

from tests.integration.calendar_sync.support import Activity, customer
from tests.support.polling import wait_until

TOPIC = "activities"
GAUGE = "crm_calendar_sync_status_unpublished"


def clock() -> datetime:
    return datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class CountingCalendar:
    """A calendar that keeps entries in memory and counts the calls that write."""

    kind = "graph"

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, str]] = []  # (call, activity id, subject)
        self.entries: dict[str, CalendarEntry] = {}
        self.looks: list[bool] = []  # per create: whether it was to look first
        self.on_create: Callable[[], None] = lambda: None

    def create(
        self,
        mailbox: str,
        activity_id: str,
        entry: CalendarEntry,
        *,
        version: int,
        keep: str | None = None,
        look: bool = True,
    ) -> Placed:
        self.writes.append(("create", activity_id, entry.subject))
        self.looks.append(look)
        self.entries[activity_id] = entry
        self.on_create()
        return Placed(f"evt-{activity_id}", f"ck-{version}")

    def update(
        self, mailbox: str, activity_id: str, event_id: str, entry: CalendarEntry, *, version: int
    ) -> Placed | None:
        self.writes.append(("update", activity_id, entry.subject))
        self.entries[activity_id] = entry
        return Placed(event_id, f"ck-{version}")

    def remove(self, mailbox: str, activity_id: str, event_id: str) -> None:
        self.writes.append(("remove", activity_id, ""))
        self.entries.pop(activity_id, None)

    def fetch(self, mailbox: str, activity_id: str, event_id: str) -> Remote | None:
        return None

    def find_all(self, mailbox: str, activity_id: str) -> list[Remote]:
        return []

    def window(self, mailbox: str, start: datetime, end: datetime) -> list[Remote]:
        return []


@pytest.fixture
def state(store: StoreLocation) -> Iterator[SyncState]:
    view = SyncState(store.env())
    yield view
    view.close()


@pytest.fixture
def calendar() -> CountingCalendar:
    return CountingCalendar()


@pytest.fixture
def handler(state: SyncState) -> ActivityProjection:
    return ActivityProjection(state, SyncMetrics(), clock)


@pytest.fixture
def lanes(state: SyncState, calendar: CountingCalendar) -> Lanes:
    as_port: Calendar = calendar
    projector = Projector(state, as_port, CancelMode.REMOVE, clock)
    return Lanes(projector, SyncMetrics(), ClockPace(clock))


def wire(event: Any) -> WireMessage:
    return encode(
        event, source=SOURCE_ACTIVITY, event_id=f"{event.activity_id}:{event.version}", topic=TOPIC
    )


def test_the_one_statement_answers_what_the_separate_reads_did(state: SyncState) -> None:
    activity = Activity()
    first = Delivery(TOPIC, 0, 5)
    nothing = state.inbound(first, str(activity.id), "cust-1")
    assert (nothing.seen, nothing.record, nothing.customer_name) == (False, None, None)

    handler = ActivityProjection(state, SyncMetrics(), clock)
    handler.handle(wire(activity.planned()), first)
    state.apply_customer("cust-1", customer("cust-1", "Bageriet Ørsted"), Delivery("c", 0, 0))

    for offset, seen in ((4, True), (5, True), (6, False)):
        read = state.inbound(Delivery(TOPIC, 0, offset), str(activity.id), "cust-1")
        assert read.seen is seen is state.has_seen(first.tracking_name, offset)
        assert read.record == state.get(str(activity.id))
        assert read.customer_name == state.customer_name("cust-1") == "Bageriet Ørsted"
    # Positions are per partition; names and rows are read for the ids asked for only.
    other = state.inbound(Delivery(TOPIC, 1, 0), "another-activity", "cust-2")
    assert (other.seen, other.record, other.customer_name) == (False, None, None)


def test_a_tracked_position_makes_no_calendar_call(
    state: SyncState, calendar: CountingCalendar, handler: ActivityProjection, lanes: Lanes
) -> None:
    activity = Activity()
    planned, moved = activity.planned(), activity.moved(activity.starts_at.replace(hour=14))
    handler.handle(wire(planned), Delivery(TOPIC, 0, 0))
    assert calendar.writes == []  # the handler only says what is wanted
    lanes.drain_all()
    handler.handle(wire(moved), Delivery(TOPIC, 0, 2))
    lanes.drain_all()
    assert [call for call, _a, _s in calendar.writes] == ["create", "update"]

    # Redelivered after the commit, e.g. the offset commit to Kafka was lost.
    handler.handle(wire(moved), Delivery(TOPIC, 0, 2))
    # A position below the last tracked one that was never applied (it went to the
    # dead-letter topic) stays skipped: nothing becomes due without a commit.
    later = activity.retyped(activity.type)
    handler.handle(wire(later), Delivery(TOPIC, 0, 1))
    lanes.drain_all()
    assert len(calendar.writes) == 2
    record = state.get(str(activity.id))
    assert record is not None
    # planned, written, moved, written
    assert (record.version, record.revision, record.due_at) == (2, 4, None)


def test_the_name_read_with_the_row_is_the_one_shown(
    state: SyncState, calendar: CountingCalendar, handler: ActivityProjection, lanes: Lanes
) -> None:
    state.apply_customer("cust-7", customer("cust-7", "Bageriet Ørsted"), Delivery("c", 0, 0))
    named, unnamed = Activity(customer_id="cust-7"), Activity(customer_id="cust-8")
    handler.handle(wire(named.planned()), Delivery(TOPIC, 0, 0))
    handler.handle(wire(unnamed.planned()), Delivery(TOPIC, 0, 1))
    lanes.drain_all()
    shown = {a: s for _c, a, s in calendar.writes}
    assert "Bageriet Ørsted" in shown[str(named.id)]
    assert "cust-8" in shown[str(unnamed.id)]
    named_row, unnamed_row = state.get(str(named.id)), state.get(str(unnamed.id))
    assert named_row is not None
    assert unnamed_row is not None
    assert (named_row.shown_name, unnamed_row.shown_name) == ("Bageriet Ørsted", None)


class ListPublisher:
    def __init__(self) -> None:
        self.messages: list[WireMessage] = []
        self.calls = 0

    def publish(self, messages: Sequence[WireMessage]) -> None:
        self.calls += 1
        self.messages.extend(messages)

    def close(self) -> None:
        pass


def test_the_status_relay_gathers_saves_and_keeps_its_gauge(store: StoreLocation) -> None:
    waker = Waker()
    state = SyncState(store.env(), on_saved=waker.notify)
    publisher, metrics = ListPublisher(), SyncMetrics()
    relay = StatusRelay(state, publisher, metrics, topic="sync", batch_size=3)
    handler = ActivityProjection(state, metrics, clock)
    activities = [Activity(owner=f"user{n}@example.dk") for n in range(7)]
    for offset, activity in enumerate(activities):
        handler.handle(wire(activity.planned()), Delivery(TOPIC, 0, offset))
    assert relay.step() == 3  # a full batch: the backlog is counted
    assert metrics.registry.get_sample_value(GAUGE) == 4
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop, waker), kwargs={"gather": 0.2})
    thread.start()
    try:
        wait_until(lambda: len(publisher.messages) == 7, timeout=10, message="7 statuses")
        # Set once the step that published the last of them has marked them published.
        wait_until(lambda: metrics.registry.get_sample_value(GAUGE) == 0, message="gauge 0")
        calls = publisher.calls
        # Saves in quick succession are published together once the window closes.
        for offset, activity in enumerate(activities, start=len(activities)):
            handler.handle(
                wire(activity.moved(activity.starts_at.replace(hour=15))),
                Delivery(TOPIC, 0, offset),
            )
        wait_until(lambda: len(publisher.messages) == 14, timeout=10, message="14 statuses")
        assert publisher.calls - calls <= 4  # 7 saves: batches of 3, not a publish per save
    finally:
        stop.set()
        thread.join(timeout=10)
        state.close()
    statuses = [decode(m).message for m in publisher.messages]
    assert {str(s.activity_id) for s in statuses} == {str(a.id) for a in activities}


def test_a_status_the_contract_refuses_is_parked_and_the_rest_go_out(
    store: StoreLocation,
) -> None:
    state = SyncState(store.env())
    parking = ParkingLot(store.env(), "calendar_sync")
    publisher, metrics = ListPublisher(), SyncMetrics()
    relay = StatusRelay(state, publisher, metrics, topic="sync", parking=parking)
    handler = ActivityProjection(state, metrics, clock)
    bad, good = Activity(owner="bad@example.dk"), Activity(owner="good@example.dk")
    for offset, activity in enumerate((bad, good)):
        handler.handle(wire(activity.planned()), Delivery(TOPIC, 0, offset))
    planted = state.get(str(bad.id))
    assert planted is not None
    # A row from before owners had to be e-mail addresses: no mailbox the contract takes.
    assert state.save(replace(planted, mailbox="anna"), expected_revision=planted.revision)
    try:
        relay.step()
        relay.step()  # parked once, however often the row is looked at

        assert [decode(m).message.activity_id for m in publisher.messages] == [good.id]  # type: ignore[union-attr]
        (entry,) = parking.entries()
        assert (entry.worker, entry.subject) == ("calendar-sync-status-relay", str(bad.id))
        assert "mailbox" in entry.error

        fixed = state.get(str(bad.id))
        assert fixed is not None
        assert state.save(
            replace(fixed, mailbox="bad@example.dk"), expected_revision=fixed.revision
        )
        parking.request_retry(entry.id)
        assert relay.retry_parked() == 1
        assert parking.entries() == []
        assert bad.id in {decode(m).message.activity_id for m in publisher.messages}  # type: ignore[union-attr]
    finally:
        parking.close()
        state.close()


def test_only_a_rows_first_take_creates_without_looking(
    state: SyncState, calendar: CountingCalendar, handler: ActivityProjection, lanes: Lanes
) -> None:
    first, raced = Activity(), Activity()
    handler.handle(wire(first.planned()), Delivery(TOPIC, 0, 0))
    lanes.drain_all()
    assert calendar.looks == [False]  # nothing was ever sent for it: nothing to find

    # A newer version is committed while the lane's create is on its way: the lane's commit
    # loses, and its second attempt must look, since the first may have created the event.
    handler.handle(wire(raced.planned()), Delivery(TOPIC, 0, 1))
    moved = raced.moved(raced.starts_at.replace(hour=15))

    def consumer_commits_meanwhile() -> None:
        calendar.on_create = lambda: None
        handler.handle(wire(moved), Delivery(TOPIC, 0, 2))

    calendar.on_create = consumer_commits_meanwhile
    lanes.drain_all()
    assert calendar.looks == [False, False, True]
    record = state.get(str(raced.id))
    assert record is not None
    assert (record.version, record.due_at) == (2, None)


def test_a_kept_lane_whose_lease_was_taken_meanwhile_sends_nothing(
    state: SyncState, calendar: CountingCalendar, handler: ActivityProjection, lanes: Lanes
) -> None:
    first, second = Activity(), Activity()
    handler.handle(wire(first.planned()), Delivery(TOPIC, 0, 0))
    assert lanes.step(poll=True)
    kept = lanes._kept[first.owner]
    assert not kept.busy  # kept for the next message
    # No worker came back to it for longer than its lease; another process took the lane.
    kept.renewed -= lanes.settings.lease_seconds
    later = datetime.now(UTC) + timedelta(seconds=2 * lanes.settings.lease_seconds)
    assert state.claim(first.owner, "other-pod", lease_until=later, wall=later, now=clock())
    handler.handle(wire(second.planned()), Delivery(TOPIC, 0, 1))
    lanes.bell.ring(first.owner)
    assert lanes.step()
    assert [activity for _call, activity, _s in calendar.writes] == [str(first.id)]
    assert first.owner not in lanes._kept
    record = state.get(str(second.id))
    assert record is not None
    assert record.due_at is not None  # the other pod's to write
