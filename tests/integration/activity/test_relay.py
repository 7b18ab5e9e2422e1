"""The relay: notification log → `crm.activity.events.v1`, on SQLite and on PostgreSQL.

Mapping is checked on the in-process transport; the latency and the crash between publish
and tracking on the real Kafka broker.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from activity.api import ActivityApi, create_app
from activity.application import ActivityApplication
from activity.consumers import CustomerDirectory
from activity.domain import (
    Activity,
    AttachmentRequest,
    CompletionRequest,
    PlanRequest,
    RegistrationRequest,
)
from activity.relay import (
    RELAYED_TOPICS,
    ActivityRelay,
    UnpublishableEvent,
    ce_id,
    relay_tracking,
    to_message,
)
from crm_contracts.activity import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityMoved,
    ActivityPlanned,
    ActivityReassigned,
    ActivityRegistered,
    ActivityRetyped,
    AttachmentAdded,
    DiscoveryProfile,
)
from crm_contracts.cloudevents import Decoded, decode
from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason
from crm_contracts.topics import ACTIVITY_EVENTS, SOURCE_ACTIVITY
from crm_contracts.wire import WireMessage
from crm_platform.auth import Authenticator, AuthMode, AuthSettings
from crm_platform.follower import Waker
from crm_platform.messaging import PublishError
from crm_platform.messaging.inprocess import InProcessBroker, InProcessPublisher
from crm_platform.messaging.kafka import KafkaPublisher
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from tests.support.clock import ManualClock
from tests.support.people import ANNA, BO, MIA
from tests.support.polling import wait_until

REPO = Path(__file__).resolve().parents[3]
RUN_RELAY = Path(__file__).resolve().parent / "relay_support" / "run_relay.py"
CUSTOMER = "c-1001"
PROFILE = {
    "business": "Bageri med tre butikker",
    "situation": "Ny butik åbner i maj",
    "challenges": "Lav kendskabsgrad i Aarhus",
    "goals_and_plans": "Flere kunder om morgenen",
    "advertising_needs": "Print og web i Aarhus",
    "potential_dkk": "390000",
    "competitors": "Lagkagehuset",
    "strategy": "Lokal synlighed",
    "unique_traits": "Økologisk surdej",
}


def plan_request(clock: ManualClock, owner: str = ANNA.user_id, **changes: Any) -> PlanRequest:
    start = clock.now + timedelta(days=1)
    fields: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "owner": owner,
        "type": ActivityType.STATUS_MEETING,
        "channel": Channel.PHONE,
        "subject": "Status på kampagnen",
        "starts_at": start,
        "ends_at": start + timedelta(hours=1),
        "agenda": "Resultater fra uge 10",
    }
    fields.update(changes)
    return PlanRequest(**fields)


def in_process(tmp_path: Path) -> tuple[InProcessBroker, InProcessPublisher]:
    broker = InProcessBroker(str(tmp_path / "log.sqlite"))
    return broker, InProcessPublisher(broker)


def decoded_by_key(messages: Sequence[WireMessage]) -> dict[str, list[Decoded]]:
    by_key: dict[str, list[Decoded]] = defaultdict(list)
    for message in messages:  # partition by partition, in offset order
        by_key[message.key].append(decode(message))
    return by_key


def activity_ce_ids(app: ActivityApplication) -> list[str]:
    """What the log says should be on the topic, in log order."""
    notifications = app.recorder.select_notifications(0, 100_000, topics=RELAYED_TOPICS)
    return [ce_id(n.originator_id, n.originator_version) for n in notifications]


@pytest.fixture
def relay_parts(env: dict[str, str]) -> Iterator[Callable[..., ActivityRelay]]:
    """`make(app, publisher, **options)`: a relay over a tracking view it closes afterwards."""
    views = []

    def make(app: ActivityApplication, publisher: Any, **options: Any) -> ActivityRelay:
        view = relay_tracking(env)
        views.append(view)
        return ActivityRelay(app, publisher, view, **options)

    yield make
    for view in views:
        view.close()


# -- mapping ---------------------------------------------------------------------------------


def test_every_activity_event_reaches_the_topic_as_its_contract_message(
    app: ActivityApplication,
    clock: ManualClock,
    add_customer: Callable[..., Any],
    relay_parts: Callable[..., ActivityRelay],
    tmp_path: Path,
) -> None:
    add_customer(CUSTOMER)
    planned_at = clock.now
    a = app.plan(ANNA, plan_request(clock)).activity
    clock.advance(minutes=1)
    new_start = clock.now + timedelta(days=2)
    app.move(
        ANNA,
        a.id,
        starts_at=new_start,
        ends_at=None,
        reason=MoveReason.NO_ANSWER,
        note="Kunden tog ikke telefonen",
    )
    app.retype(
        ANNA, a.id, type_=ActivityType.DISCOVERY_MEETING, channel=Channel.VIDEO, reason="Ny ejer"
    )
    app.reassign(MIA, a.id, owner=BO.user_id)
    attachment = AttachmentRequest(
        AttachmentKind.OTHER,
        "brief.pdf",
        "application/pdf",
        1234,
        "ab" * 32,
        "https://files.example.dk/brief.pdf",
    )
    app.add_attachment(BO, a.id, attachment)
    clock.advance(days=3)
    recorded_at = clock.now
    completed_at = recorded_at - timedelta(hours=3)  # held this morning, recorded after lunch
    done = app.complete(
        BO,
        a.id,
        CompletionRequest(
            note="Kunden vil annoncere op til åbningen i maj",
            next_step="Send oplæg på print og web",
            held_at=completed_at,
            discovery_profile=PROFILE,
            next_activity=plan_request(clock, owner=BO.user_id, subject="Oplæg til kampagne"),
        ),
    ).activity
    follow_up = done.next_activity_id
    assert follow_up is not None
    app.cancel(
        BO,
        follow_up,
        reason="Kunden har udskudt åbningen",
        next_activity=plan_request(clock, owner=BO.user_id, subject="Oplæg, ny dato"),
    )
    replacement = app.history(follow_up)[-1].next_activity_id
    assert replacement is not None
    held_at = clock.now - timedelta(hours=2)
    registered = app.register(
        ANNA,
        RegistrationRequest(
            customer_id=CUSTOMER,
            owner=ANNA.user_id,
            type=ActivityType.STATUS_MEETING,
            channel=Channel.PHYSICAL,
            held_at=held_at,
            note="Kunden overvejer en kampagne i uge 12 med print og web",
            booked=True,
        ),
    ).activity

    broker, publisher = in_process(tmp_path)
    topic = "t.relay-mapping"
    relay = relay_parts(app, publisher, topic=topic)
    assert relay.catch_up() == 10
    by_key = decoded_by_key(broker.messages(topic))

    # Per key, in order, each version exactly once, with the deterministic ce_id.
    for key, events in by_key.items():
        assert [e.message.version for e in events] == list(range(1, len(events) + 1))
        assert [e.id for e in events] == [f"{key}:{v}" for v in range(1, len(events) + 1)]
        assert {(e.source, e.subject) for e in events} == {(SOURCE_ACTIVITY, key)}
    first = [e.message for e in by_key[str(a.id)]]
    assert [type(m) for m in first] == [
        ActivityPlanned,
        ActivityMoved,
        ActivityRetyped,
        ActivityReassigned,
        AttachmentAdded,
        ActivityCompleted,
    ]
    plan, move, retype, reassign, attach, complete = first
    start = planned_at + timedelta(days=1)
    assert plan == ActivityPlanned(
        activity_id=a.id,
        customer_id=CUSTOMER,
        version=1,
        actor=ANNA.user_id,
        occurred_at=planned_at,
        owner=ANNA.user_id,
        type=ActivityType.STATUS_MEETING,
        channel=Channel.PHONE,
        subject="Status på kampagnen",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        agenda="Resultater fra uge 10",
    )
    assert move == ActivityMoved(
        activity_id=a.id,
        customer_id=CUSTOMER,
        version=2,
        actor=ANNA.user_id,
        occurred_at=planned_at + timedelta(minutes=1),
        owner=ANNA.user_id,
        type=ActivityType.STATUS_MEETING,
        channel=Channel.PHONE,
        subject="Status på kampagnen",
        from_starts_at=start,
        from_ends_at=start + timedelta(hours=1),
        to_starts_at=new_start,
        to_ends_at=new_start + timedelta(hours=1),
        reason=MoveReason.NO_ANSWER,
        note="Kunden tog ikke telefonen",
    )
    assert isinstance(retype, ActivityRetyped)
    assert (retype.from_type, retype.to_type) == (
        ActivityType.STATUS_MEETING,
        ActivityType.DISCOVERY_MEETING,
    )
    assert (retype.from_channel, retype.to_channel) == (Channel.PHONE, Channel.VIDEO)
    assert (retype.starts_at, retype.owner, retype.reason) == (new_start, ANNA.user_id, "Ny ejer")
    assert isinstance(reassign, ActivityReassigned)
    assert (reassign.from_owner, reassign.to_owner, reassign.actor) == (
        ANNA.user_id,
        BO.user_id,
        MIA.user_id,
    )
    assert (reassign.type, reassign.channel, reassign.starts_at) == (
        ActivityType.DISCOVERY_MEETING,
        Channel.VIDEO,
        new_start,
    )
    assert isinstance(attach, AttachmentAdded)
    assert (attach.kind, attach.filename, attach.size, attach.sha256, attach.uri) == (
        AttachmentKind.OTHER,
        "brief.pdf",
        1234,
        "ab" * 32,
        "https://files.example.dk/brief.pdf",
    )
    assert attach.attachment_id == done.attachments[0]["attachment_id"]
    assert isinstance(complete, ActivityCompleted)
    assert (complete.owner, complete.type, complete.channel, complete.actor) == (
        BO.user_id,
        ActivityType.DISCOVERY_MEETING,
        Channel.VIDEO,
        BO.user_id,
    )
    # When it was held is when it counts; when it was recorded is the event's time.
    assert (complete.completed_at, complete.occurred_at) == (completed_at, recorded_at)
    assert complete.next_step == "Send oplæg på print og web"
    assert complete.next_activity_id == follow_up
    assert complete.discovery_profile == DiscoveryProfile(
        **{k: v for k, v in PROFILE.items() if k != "potential_dkk"},
        potential_dkk=Decimal("390000.00"),
    )
    # Money stays exact on the wire: a string with two decimals, never a float.
    raw = next(m for m in broker.messages(topic) if m.header("ce_id") == f"{a.id}:6".encode())
    assert json.loads(raw.value)["discovery_profile"]["potential_dkk"] == "390000.00"

    follow = [e.message for e in by_key[str(follow_up)]]
    assert [type(m) for m in follow] == [ActivityPlanned, ActivityCancelled]
    assert follow[0].subject == "Oplæg til kampagne"  # type: ignore[attr-defined]
    assert follow[1] == ActivityCancelled(
        activity_id=follow_up,
        customer_id=CUSTOMER,
        version=2,
        actor=BO.user_id,
        occurred_at=recorded_at,
        owner=BO.user_id,
        reason="Kunden har udskudt åbningen",
        next_activity_id=replacement,
    )
    (replanned,) = [e.message for e in by_key[str(replacement)]]
    assert isinstance(replanned, ActivityPlanned)
    assert (replanned.subject, replanned.occurred_at) == ("Oplæg, ny dato", recorded_at)
    (register,) = [e.message for e in by_key[str(registered.id)]]
    assert register == ActivityRegistered(
        activity_id=registered.id,
        customer_id=CUSTOMER,
        version=1,
        actor=ANNA.user_id,
        occurred_at=recorded_at,
        owner=ANNA.user_id,
        type=ActivityType.STATUS_MEETING,
        channel=Channel.PHYSICAL,
        held_at=held_at,
        booked=True,
        note="Kunden overvejer en kampagne i uge 12 med print og web",
    )
    # Customer files and idempotency records never leave the service.
    assert len(by_key) == 4
    assert relay.catch_up() == 0
    assert len(broker.messages(topic)) == 10


def test_a_relay_started_mid_stream_reads_the_state_before_each_event_from_the_store(
    app: ActivityApplication,
    clock: ManualClock,
    add_customer: Callable[..., Any],
    relay_parts: Callable[..., ActivityRelay],
    tmp_path: Path,
) -> None:
    add_customer(CUSTOMER)
    a = app.plan(ANNA, plan_request(clock)).activity
    broker, publisher = in_process(tmp_path)
    topic = "t.relay-restart"
    assert relay_parts(app, publisher, topic=topic).catch_up() == 1
    app.retype(ANNA, a.id, type_=ActivityType.SALES_MEETING, channel=None, reason=None)
    app.reassign(MIA, a.id, owner=BO.user_id)

    # A new process: empty cache, position from the tracking table.
    restarted = relay_parts(app, publisher, topic=topic, cache_size=1)
    assert restarted.catch_up() == 2
    _, retype, reassign = [d.message for d in decoded_by_key(broker.messages(topic))[str(a.id)]]
    assert isinstance(retype, ActivityRetyped)
    assert (retype.from_type, retype.to_type, retype.to_channel, retype.version) == (
        ActivityType.STATUS_MEETING,
        ActivityType.SALES_MEETING,
        Channel.PHONE,
        2,
    )
    assert isinstance(reassign, ActivityReassigned)
    assert (reassign.from_owner, reassign.type, reassign.version) == (
        ANNA.user_id,
        ActivityType.SALES_MEETING,
        3,
    )


class FailsFirst:
    """A transport that refuses the first `failures` batches, then passes them on."""

    def __init__(self, inner: InProcessPublisher, failures: int) -> None:
        self.inner, self.failures = inner, failures

    def publish(self, messages: Sequence[WireMessage]) -> None:
        if self.failures:
            self.failures -= 1
            raise PublishError("broker unavailable")
        self.inner.publish(messages)

    def close(self) -> None:
        self.inner.close()


def test_a_failed_publish_leaves_the_position_and_the_batch_comes_again(
    app: ActivityApplication,
    clock: ManualClock,
    add_customer: Callable[..., Any],
    relay_parts: Callable[..., ActivityRelay],
    tmp_path: Path,
) -> None:
    add_customer(CUSTOMER)
    a = app.plan(ANNA, plan_request(clock)).activity
    app.reassign(MIA, a.id, owner=BO.user_id)
    broker, publisher = in_process(tmp_path)
    topic = "t.relay-retry"
    relay = relay_parts(app, FailsFirst(publisher, failures=2), topic=topic)
    with pytest.raises(PublishError):
        relay.step()
    assert relay.position == 0
    # The run loop logs the failure and tries again after the poll interval.
    stop = threading.Event()
    runner = threading.Thread(target=relay.run, args=(stop,), kwargs={"poll_interval": 0.05})
    runner.start()
    try:
        wait_until(lambda: len(broker.messages(topic)) == 2, message="the retried batch")
    finally:
        stop.set()
        runner.join(timeout=10)
    by_key = decoded_by_key(broker.messages(topic))
    assert [type(d.message) for d in by_key[str(a.id)]] == [ActivityPlanned, ActivityReassigned]
    assert relay.position == app.recorder.max_notification_id()


def test_an_event_the_contract_refuses_stops_the_relay_without_logging_its_values(
    app: ActivityApplication,
    clock: ManualClock,
    add_customer: Callable[..., Any],
    relay_parts: Callable[..., ActivityRelay],
    tmp_path: Path,
) -> None:
    add_customer(CUSTOMER)
    too_long = "x" * 101 + "@example.dk"  # a mailbox the contract's 100-character id refuses
    app.plan(MIA, plan_request(clock, owner=too_long))
    broker, publisher = in_process(tmp_path)
    relay = relay_parts(app, publisher, topic="t.relay-poison")
    with pytest.raises(UnpublishableEvent) as refused:
        relay.step()
    assert "owner" in str(refused.value)
    assert too_long not in str(refused.value)
    assert relay.position == 0
    assert broker.messages("t.relay-poison") == []


def test_mapping_an_event_after_creation_needs_the_state_before_it() -> None:
    fields: dict[str, Any] = {
        "originator_id": UUID(int=1),
        "originator_version": 2,
        "timestamp": ManualClock().now,
        "reason": "Aflyst",
        "actor": ANNA.user_id,
    }
    event = Activity.Cancelled(**fields)
    with pytest.raises(ValueError, match="needs the activity's state before it"):
        to_message(event, None)


# -- the real broker -------------------------------------------------------------------------


def read_topic(bootstrap: str, topic: str, *, timeout: float = 15.0) -> list[WireMessage]:
    """Everything on `topic` now, partition by partition in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assert partitions, f"{topic} has no partitions"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: dict[int, list[WireMessage]] = defaultdict(list)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for tp, records in consumer.poll(timeout_ms=200).items():
                out[tp.partition].extend(
                    WireMessage(r.topic, r.key.decode(), r.value, tuple(r.headers)) for r in records
                )
        return [m for p in sorted(out) for m in out[p]]
    finally:
        consumer.close()


def test_an_activity_planned_over_http_reaches_the_topic_by_the_wake_up_alone(
    env: dict[str, str],
    directory: CustomerDirectory,
    clock: ManualClock,
    add_customer: Callable[..., Any],
    relay_parts: Callable[..., ActivityRelay],
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    request: pytest.FixtureRequest,
) -> None:
    """Embedded (SQLite): woken by `on_saved`; PostgreSQL: woken by LISTEN/NOTIFY alone."""
    add_customer(CUSTOMER)
    waker = Waker()
    postgres = env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    app = ActivityApplication(
        env, directory=directory, clock=clock, on_saved=None if postgres else waker.notify
    )
    topic = topic_factory("activity-events", partitions=3)
    publisher = KafkaPublisher(kafka_bootstrap, client_id="relay-latency-test")
    relay = relay_parts(app, publisher, topic=topic)
    # Longer than the test may take: only the wake-up can bring the events out in time.
    poll_interval = 3600.0
    listen_dsn = request.getfixturevalue("postgres_dsn") if postgres else None
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    tps = [TopicPartition(topic, p) for p in range(3)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    consumer.poll(timeout_ms=100)  # connected and positioned before the clock starts

    auth = Authenticator(AuthSettings(mode=AuthMode.DEV), production_settings_present=False)
    headers = {"X-Dev-User": ANNA.user_id, "X-Dev-Roles": "consultant"}
    stop = threading.Event()
    runner = threading.Thread(
        target=relay.run,
        args=(stop, waker),
        kwargs={"listen_dsn": listen_dsn, "poll_interval": poll_interval},
        daemon=True,
    )
    runner.start()
    latencies: list[float] = []  # request start → a consumer has it
    sends: list[float] = []  # request start → the relay's producer sent it
    try:
        with TestClient(create_app(ActivityApi(app=app, auth=auth))) as client:
            if listen_dsn is not None:
                # A NOTIFY sent before the relay LISTENs is lost (by design: polling covers
                # it); here nothing polls, so plan only once it listens.
                wait_until(
                    lambda: listening(listen_dsn, app.recorder),
                    message="the relay to LISTEN for saves",
                )
            for n in range(5):
                start = clock.now + timedelta(days=1, hours=n)
                body = {
                    "customer_id": CUSTOMER,
                    "owner": ANNA.user_id,
                    "type": "status_meeting",
                    "channel": "phone",
                    "subject": f"Status {n}",
                    "starts_at": start.isoformat(),
                    "ends_at": (start + timedelta(hours=1)).isoformat(),
                }
                began, began_wall = time.monotonic(), time.time()
                response = client.post("/activities", json=body, headers=headers)
                assert response.status_code == 201, response.text
                wanted = f"{response.json()['id']}:1".encode()

                def arrived(wanted: bytes = wanted) -> int:
                    for records in consumer.poll(timeout_ms=50).values():
                        for r in records:
                            if dict(r.headers).get("ce_id") == wanted:
                                return int(r.timestamp)  # when the producer sent it (ms)
                    return 0

                sent_ms = wait_until(arrived, timeout=10, interval=0, message="the activity")
                latencies.append(time.monotonic() - began)
                sends.append(sent_ms / 1000 - began_wall)
    finally:
        stop.set()
        waker.notify()  # it waits for the next wake-up, not for a poll
        runner.join(timeout=10)
        consumer.close()
        publisher.close()
        app.close()
    store = "postgres+LISTEN" if postgres else "sqlite+on_saved"
    print(
        f"\nplan→topic latency ({store}): "
        + ", ".join(f"{s * 1000:.0f} ms" for s in latencies)
        + f"; median {statistics.median(latencies) * 1000:.0f} ms"
        + "; of which until sent: "
        + ", ".join(f"{s * 1000:.0f} ms" for s in sends)
    )


def listening(dsn: str, recorder: Any) -> bool:
    """Whether some session of the database LISTENs on the recorder's channel."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query = %s",
            (f'LISTEN "{recorder.channel_name}"',),
        ).fetchone()
    return bool(row and row[0])


def run_relay(
    env: dict[str, str], bootstrap: str, topic: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    variables = os.environ | {
        "RELAY_STORE_ENV": json.dumps(env),
        "RELAY_BOOTSTRAP": bootstrap,
        "RELAY_TOPIC": topic,
        **extra,
    }
    return subprocess.run(
        [sys.executable, str(RUN_RELAY)],
        cwd=REPO,
        env=variables,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_relay_killed_between_publish_and_tracking_repeats_but_never_loses(
    app: ActivityApplication,
    env: dict[str, str],
    clock: ManualClock,
    add_customer: Callable[..., Any],
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
) -> None:
    add_customer(CUSTOMER)
    ids = [app.plan(ANNA, plan_request(clock, subject=f"Møde {n}")).activity.id for n in range(6)]
    for activity_id in ids[:3]:
        app.move(
            ANNA,
            activity_id,
            starts_at=clock.now + timedelta(days=3),
            ends_at=None,
            reason=MoveReason.CUSTOMER_REQUEST,
            note=None,
        )
    app.cancel(ANNA, ids[5], reason="Kunden har ikke tid")
    expected = activity_ce_ids(app)
    assert len(expected) == 10
    topic = topic_factory("activity-events", partitions=3)

    crashed = run_relay(
        env, kafka_bootstrap, topic, RELAY_BATCH_SIZE="3", RELAY_CRASH_AFTER_PUBLISHES="2"
    )
    assert crashed.returncode == -9, crashed.stderr
    in_flight = json.loads(crashed.stdout.splitlines()[-1])["crashing_after"]
    assert in_flight == expected[3:6]  # the second batch: on the broker, not tracked
    tracking = relay_tracking(env)
    try:
        first_batch_end = app.recorder.select_notifications(0, 3, topics=RELAYED_TOPICS)[-1].id
        assert tracking.position("activity") == first_batch_end
    finally:
        tracking.close()

    restarted = run_relay(env, kafka_bootstrap, topic, RELAY_BATCH_SIZE="3")
    assert restarted.returncode == 0, restarted.stderr
    assert json.loads(restarted.stdout.splitlines()[-1]) == {
        "published": 7,
        "position": app.recorder.select_notifications(0, 100, topics=RELAYED_TOPICS)[-1].id,
    }

    on_topic = read_topic(kafka_bootstrap, topic)
    counts = Counter((m.header("ce_id") or b"").decode() for m in on_topic)
    assert {i for i, c in counts.items() if c > 1} == set(in_flight)
    assert max(counts.values()) == 2
    # A consumer that dedupes on ce_id sees each change exactly once, none missing, in order.
    seen: set[str] = set()
    deduped: dict[str, list[int]] = defaultdict(list)
    for message in on_topic:
        event = decode(message)
        if event.id in seen:
            continue
        seen.add(event.id)
        deduped[message.key].append(event.message.version)
    assert seen == set(expected)
    assert sum(map(len, deduped.values())) == len(expected) == 10
    assert all(v == list(range(1, len(v) + 1)) for v in deduped.values())
    assert {m.topic for m in on_topic} == {topic} != {ACTIVITY_EVENTS}
