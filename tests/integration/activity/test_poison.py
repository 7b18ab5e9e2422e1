"""Poison planted straight in the event store never stalls the read models or the relay.

The API refuses these values now, but events written before that, by another version, or by
hand are still in the log. Each one is parked with its reason (and the later events of its
activity behind it, so nothing is applied out of order); everything else flows on, and an
operator's retry after a fix finishes the job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from activity.application import ActivityApplication
from activity.consumers import CustomerDirectory
from activity.domain import Activity, PlanRequest
from activity.projections import ACTIVITY_TOPICS, ActivityReadModel, follower
from activity.read_queries import ActivityRow
from activity.relay import RELAYED_TOPICS, ActivityRelay, relay_tracking
from crm_contracts.cloudevents import decode, encode
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import ActivityType, Channel, MoveReason, Segment
from crm_contracts.wire import WireMessage
from crm_platform.follower import WAITING, LogFollower
from crm_platform.messaging import Delivery, RetryPolicy
from crm_platform.messaging.inprocess import InProcessBroker, InProcessPublisher
from crm_platform.messaging.transport import InProcessTransport
from crm_platform.parking import MessageRetries, ParkingLot, message_parker
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from tests.support.clock import ManualClock
from tests.support.people import ANNA, MIA
from tests.support.polling import wait_until

TOPIC = "t.poison"


@pytest.fixture
def parking(env: dict[str, str]) -> Iterator[ParkingLot]:
    lot = ParkingLot(env, "activity")
    yield lot
    lot.close()


@pytest.fixture
def customers(add_customer: Callable[..., Any]) -> None:
    add_customer("K1", "Alfa Reklame", Segment.C)
    add_customer("K2", "Bager Hansen", Segment.D)


def plan(
    app: ActivityApplication, clock: ManualClock, customer: str = "K1", **changes: Any
) -> UUID:
    start = clock.now + timedelta(days=1)
    fields: dict[str, Any] = {
        "customer_id": customer,
        "owner": ANNA.user_id,
        "type": ActivityType.STATUS_MEETING,
        "channel": Channel.PHONE,
        "subject": "Status på kampagnen",
        "starts_at": start,
        "ends_at": start + timedelta(hours=1),
    } | changes
    return app.plan(MIA, PlanRequest(**fields)).activity.id


def plant_undecodable(app: ActivityApplication) -> UUID:
    """A stored event no code can read back: broken JSON under an Activity event's topic."""
    originator = uuid.uuid4()
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=originator,
                originator_version=1,
                topic=get_topic(Activity.Planned),
                state=b'{"customer_id": "K1", "owner": ',
            )
        ]
    )
    return originator


def caught_up(
    app: ActivityApplication, position: int | None, topics: Sequence[str] = ACTIVITY_TOPICS
) -> bool:
    """Nothing of `topics` lies beyond `position` in the log."""
    return not app.recorder.select_notifications(
        start=position or 0, limit=1, topics=topics, inclusive_of_start=False
    )


def rows(read_model: ActivityReadModel) -> dict[str, ActivityRow]:
    items, _ = read_model.list_activities(limit=100)
    return {str(row.activity_id): row for row in items}


def ids_in(read_model: ActivityReadModel) -> set[str]:
    return set(rows(read_model))


@pytest.mark.usefixtures("customers")
def test_the_read_model_parks_each_poison_and_folds_the_rest(
    app: ActivityApplication, clock: ManualClock, read_model: ActivityReadModel, parking: ParkingLot
) -> None:
    before = plan(app, clock)
    broken = plant_undecodable(app)
    nul = plan(app, clock, subject="a\u0000b")  # PostgreSQL's text cannot hold a NUL
    app.move(
        MIA,
        nul,
        starts_at=clock.now + timedelta(days=2),
        reason=MoveReason.NO_ANSWER,
        ends_at=None,
        note=None,
    )
    end = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)  # past the end of time in Copenhagen
    far = plan(app, clock, customer="K2", starts_at=end, ends_at=end + timedelta(minutes=30))
    after = plan(app, clock, customer="K2")

    follower(app, read_model, parking=parking).catch_up()

    parked = {(e.subject, e.error) for e in parking.entries()}
    assert {str(broken), str(far)} <= {subject for subject, _ in parked}
    assert {str(before), str(after)} <= ids_in(read_model)
    if read_model.is_postgres:
        assert str(nul) not in ids_in(read_model)
        nul_entries = [e for e in parking.entries() if e.subject == str(nul)]
        assert [e.error for e in nul_entries][1:] == [WAITING]
        assert "NUL" in nul_entries[0].error or "0x00" in nul_entries[0].error
    else:
        assert str(nul) in ids_in(read_model)  # SQLite stores it; only the broken event is parked
        assert len(parked) == 2
    assert caught_up(app, read_model.position(app.name))


class Flaky:
    """An apply that fails for one activity until told otherwise (a bug, fixed later)."""

    def __init__(self, read_model: ActivityReadModel) -> None:
        self.read_model = read_model
        self.failing: str | None = None

    def __call__(self, tx: Any, batch: Any) -> None:
        if any(str(event.originator_id) == self.failing for _, event in batch):
            raise RuntimeError("a bug in the fold")
        self.read_model.apply(tx, batch)


@pytest.mark.usefixtures("customers")
def test_a_retry_after_the_fix_applies_the_parked_events_in_order(
    app: ActivityApplication, clock: ManualClock, read_model: ActivityReadModel, parking: ParkingLot
) -> None:
    flaky = Flaky(read_model)
    stuck = plan(app, clock)
    flaky.failing = str(stuck)
    moved_to = clock.now + timedelta(days=3)
    app.move(MIA, stuck, starts_at=moved_to, reason=MoveReason.NO_ANSWER, ends_at=None, note=None)
    other = plan(app, clock, customer="K2")
    runner = LogFollower(app, read_model, apply=flaky, parking=parking, topics=())
    runner.catch_up()
    assert ids_in(read_model) == {str(other)}
    first, waiting = sorted(parking.entries(), key=lambda e: int(e.position))
    assert (first.attempts, waiting.error) == (1, WAITING)

    assert runner.retry_parked() == 0  # nobody asked yet
    parking.request_retry(first.id)
    assert runner.retry_parked() == 0  # the bug is still there
    assert parking.get(first.id).attempts == 2  # type: ignore[union-attr]
    flaky.failing = None
    parking.request_retry(first.id)

    assert runner.retry_parked() == 2

    assert parking.entries() == []
    assert rows(read_model)[str(stuck)].starts_at == moved_to
    later = plan(app, clock)  # the subject is no longer blocked: new events flow again
    runner.catch_up()
    assert str(later) in ids_in(read_model)


@pytest.mark.usefixtures("customers")
def test_the_relay_parks_what_the_contract_refuses_and_publishes_the_rest(
    app: ActivityApplication,
    clock: ManualClock,
    env: dict[str, str],
    parking: ParkingLot,
    tmp_path: Path,
) -> None:
    good = plan(app, clock)
    not_a_mailbox = plan(app, clock, owner="anna")  # owners are e-mail addresses on the wire
    app.move(
        MIA,
        not_a_mailbox,
        starts_at=clock.now + timedelta(days=2),
        reason=MoveReason.OTHER,
        ends_at=None,
        note=None,
    )
    broken = plant_undecodable(app)
    also_good = plan(app, clock, customer="K2")
    broker = InProcessBroker(str(tmp_path / "log.sqlite"))
    tracking = relay_tracking(env)
    try:
        relay = ActivityRelay(
            app, InProcessPublisher(broker), tracking, topic=TOPIC, parking=parking
        )
        relay.catch_up()
        assert caught_up(app, relay.position, RELAYED_TOPICS)
    finally:
        tracking.close()

    published = {decode(m).message.activity_id for m in broker.messages(TOPIC)}  # type: ignore[union-attr]
    assert published == {good, also_good}
    by_subject: dict[str, list[str]] = {}
    for entry in sorted(parking.entries(), key=lambda e: int(e.position)):
        by_subject.setdefault(entry.subject, []).append(entry.error)
    assert set(by_subject) == {str(not_a_mailbox), str(broken)}
    assert "owner" in by_subject[str(not_a_mailbox)][0]
    assert "anna" not in by_subject[str(not_a_mailbox)][0]  # names the field, not the value
    assert by_subject[str(not_a_mailbox)][1:] == [WAITING]


def snapshot_message(customer_id: str, topic: str) -> WireMessage:
    snapshot = CustomerSnapshot(
        customer_id=customer_id,
        name="Cykel Centret",
        segment=Segment.B,
        prioritized=True,
        version=1,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        actor="segmentation",
    )
    return encode(snapshot, source="test", topic=topic)


def test_a_consumer_parks_what_it_gives_up_on_and_a_retry_after_the_fix_applies_it(
    directory: CustomerDirectory, parking: ParkingLot, tmp_path: Path
) -> None:
    topic, worker = "t.customers", "consumer:test"
    broker = InProcessBroker(str(tmp_path / "transport.sqlite"))
    transport = InProcessTransport(broker)
    unreadable = replace(snapshot_message("K8", topic), value=b'{"customer_id": ')
    failing = {"K9"}  # a bug in the handler for this customer, fixed later

    def handle(message: WireMessage, delivery: Delivery) -> None:
        if message.key in failing:
            raise RuntimeError("a bug in the handler")
        directory.handle(message, delivery)

    publisher = transport.publisher()
    publisher.publish([unreadable, snapshot_message("K9", topic), snapshot_message("K10", topic)])
    policy = RetryPolicy(max_attempts=2, base_delay=0.001, park=message_parker(parking, worker))
    consumer = transport.consumer([topic], "g", handle, policy=policy)
    wait_until(lambda: consumer.poll_once(0.1) == 0 and directory.get("K10") is not None)

    assert {e.subject for e in parking.entries()} == {"K8", "K9"}
    assert len(broker.messages(f"{topic}.dlq")) == 2
    assert directory.get("K9") is None

    failing.clear()
    for entry in parking.entries():
        parking.request_retry(entry.id)
    retries = MessageRetries(parking, worker, handle)

    assert retries.retry_due() == 1  # K9 now; K8 can never be read
    assert retries.retry_due() == 0  # K8 is parked again, not retried in a loop
    assert directory.get("K9") is not None
    (left,) = parking.entries()
    assert (left.subject, left.attempts) == ("K8", 2)
    consumer.close()
    publisher.close()
