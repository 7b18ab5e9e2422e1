"""The relay: customer events → snapshots on `crm.customers.v1`, on SQLite and PostgreSQL.

The mapping on the in-process transport; the wake-up and the keys on the real Kafka broker.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from crm_contracts.cloudevents import Decoded, decode
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import Segment
from crm_contracts.topics import SOURCE_SEGMENTATION
from crm_contracts.wire import WireMessage
from crm_platform.follower import Waker
from crm_platform.messaging import PublishError
from crm_platform.messaging.inprocess import InProcessBroker, InProcessPublisher
from crm_platform.messaging.kafka import KafkaPublisher
from kafka import KafkaConsumer, TopicPartition
from segmentation.application import SegmentationApplication
from segmentation.policy import DEFAULT_POLICY
from segmentation.recompute_worker import RecomputeRunner
from segmentation.relay import RELAYED_TOPICS, CustomerRelay, ce_id, relay_tracking, snapshot

from tests.support.clock import ManualClock
from tests.support.people import ANNA, MIA
from tests.support.polling import wait_until


def in_process(tmp_path: Path) -> tuple[InProcessBroker, InProcessPublisher]:
    broker = InProcessBroker(str(tmp_path / "log.sqlite"))
    return broker, InProcessPublisher(broker)


def by_key(messages: Sequence[WireMessage]) -> dict[str, list[Decoded]]:
    found: dict[str, list[Decoded]] = defaultdict(list)
    for message in messages:
        found[message.key].append(decode(message))
    return found


def snapshots(decoded: list[Decoded]) -> list[CustomerSnapshot]:
    out = [d.message for d in decoded]
    assert all(isinstance(m, CustomerSnapshot) for m in out)
    return out  # type: ignore[return-value]


@pytest.fixture
def make_relay(env: dict[str, str]) -> Iterator[Callable[..., CustomerRelay]]:
    views = []

    def make(app: SegmentationApplication, publisher: Any, **options: Any) -> CustomerRelay:
        view = relay_tracking(env)
        views.append(view)
        return CustomerRelay(app, publisher, view, **options)

    yield make
    for view in views:
        view.close()


def history_of_changes(app: SegmentationApplication, clock: ManualClock) -> None:
    app.register_customer(MIA, customer_id="c-1", name="Bager Hansen ApS", owner=ANNA.user_id)
    clock.advance(minutes=1)
    app.assess_potential(MIA, "c-1", amount="200000")  # unsegmented → B, prioritized
    app.rename(ANNA, "c-1", name="Bageriet")
    app.start_agreement(MIA, "c-1", starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    app.register_customer(MIA, customer_id="c-2", name="Kiosken")


def test_every_customer_event_publishes_its_snapshot_and_nothing_else_leaves(
    app: SegmentationApplication,
    clock: ManualClock,
    runner: RecomputeRunner,
    make_relay: Callable[..., CustomerRelay],
    tmp_path: Path,
) -> None:
    history_of_changes(app, clock)
    # A policy change and its recomputation: the book and the job stay inside; the changed
    # customer's SegmentChanged/PrioritizedChanged goes out.
    app.assess_potential(MIA, "c-2", amount="360000")  # B under the default policy
    policy = DEFAULT_POLICY.to_json()
    policy["thresholds"] = {**policy["thresholds"], "A": "350000.00"}
    runner.run(app.set_policy(MIA, policy).recomputation.id)

    broker, publisher = in_process(tmp_path)
    relay = make_relay(app, publisher, topic="t.customers", batch_size=3)
    relay.catch_up()
    found = by_key(broker.messages("t.customers"))
    assert set(found) == {"c-1", "c-2"}

    expected = app.recorder.select_notifications(0, 10_000, topics=RELAYED_TOPICS)
    assert sum(len(v) for v in found.values()) == len(expected)
    for key, decoded in found.items():
        versions = [s.version for s in snapshots(decoded)]
        assert versions == list(range(1, len(versions) + 1))  # every version, in order
        assert [d.id for d in decoded] == [ce_id(key, v) for v in versions]
        assert {d.source for d in decoded} == {SOURCE_SEGMENTATION}
        # The last snapshot is the customer now; each is the customer at its version.
        assert snapshots(decoded)[-1] == snapshot(app.customer(key).customer)
        for s in snapshots(decoded):
            assert s == snapshot(app.customer(key, version=s.version).customer)

    c1 = snapshots(found["c-1"])
    # the potential: a PotentialAssessed then its SegmentChanged, both published
    assert [(s.segment, s.prioritized, s.potential_dkk) for s in c1[1:3]] == [
        (Segment.UNSEGMENTED, False, 200000),
        (Segment.B, True, 200000),
    ]
    assert (c1[-1].segment, c1[-1].name) == (Segment.ANNUAL_AGREEMENT, "Bageriet")
    c2 = snapshots(found["c-2"])
    assert (c2[-1].segment, c2[-1].prioritized) == (Segment.A, True)
    # The position is the last customer event's (the job's own events after it are skipped).
    assert relay.position == expected[-1].id
    # Nothing new: nothing more.
    assert relay.catch_up() == 0


def test_a_new_relay_resumes_after_its_position_with_a_cold_cache(
    app: SegmentationApplication,
    clock: ManualClock,
    make_relay: Callable[..., CustomerRelay],
    tmp_path: Path,
) -> None:
    app.register_customer(MIA, customer_id="c-1", name="Bager Hansen ApS")
    broker, publisher = in_process(tmp_path)
    assert make_relay(app, publisher, topic="t.c").catch_up() == 1
    app.assess_potential(MIA, "c-1", amount="390000")
    # Another relay (a restart): it knows nothing of c-1 but the position in the store.
    restarted = make_relay(app, publisher, topic="t.c")
    assert restarted.catch_up() == 2
    published = snapshots(by_key(broker.messages("t.c"))["c-1"])
    assert [(s.version, s.segment) for s in published] == [
        (1, Segment.UNSEGMENTED),
        (2, Segment.UNSEGMENTED),
        (3, Segment.A),
    ]


class FailsFirst:
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
    app: SegmentationApplication, make_relay: Callable[..., CustomerRelay], tmp_path: Path
) -> None:
    app.register_customer(MIA, customer_id="c-1", name="Bager Hansen ApS")
    app.assess_potential(MIA, "c-1", amount="50000")
    broker, publisher = in_process(tmp_path)
    relay = make_relay(app, FailsFirst(publisher, failures=2), topic="t.retry")
    with pytest.raises(PublishError):
        relay.step()
    assert relay.position == 0
    stop = threading.Event()
    worker = threading.Thread(target=relay.run, args=(stop,), kwargs={"poll_interval": 0.05})
    worker.start()
    try:
        wait_until(lambda: len(broker.messages("t.retry")) == 3, message="the retried batch")
    finally:
        stop.set()
        worker.join(timeout=10)
    published = snapshots(by_key(broker.messages("t.retry"))["c-1"])
    assert [s.segment for s in published] == [Segment.UNSEGMENTED, Segment.UNSEGMENTED, Segment.C]


def read_topic(bootstrap: str, topic: str, want: int, timeout: float = 15.0) -> list[WireMessage]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[WireMessage] = []
        deadline = time.monotonic() + timeout
        while len(out) < want:
            assert time.monotonic() < deadline, f"only {len(out)} of {want} messages on {topic}"
            for records in consumer.poll(timeout_ms=200).values():
                out.extend(
                    WireMessage(r.topic, r.key.decode(), r.value, tuple(r.headers)) for r in records
                )
        return out
    finally:
        consumer.close()


def test_a_potential_change_reaches_kafka_keyed_by_customer_with_its_new_segment(
    env: dict[str, str],
    clock: ManualClock,
    make_relay: Callable[..., CustomerRelay],
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    request: pytest.FixtureRequest,
) -> None:
    """Embedded (SQLite): woken by `on_saved`; PostgreSQL: by LISTEN/NOTIFY."""
    waker = Waker()
    postgres = env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    app = SegmentationApplication(env, clock=clock, on_saved=None if postgres else waker.notify)
    topic = topic_factory("customers", partitions=3)
    publisher = KafkaPublisher(kafka_bootstrap, client_id="segmentation-relay-test")
    relay = make_relay(app, publisher, topic=topic)
    listen_dsn = request.getfixturevalue("postgres_dsn") if postgres else None
    stop = threading.Event()
    worker = threading.Thread(
        target=relay.run,
        args=(stop, waker),
        kwargs={"listen_dsn": listen_dsn, "poll_interval": 5.0},
        daemon=True,
    )
    worker.start()
    try:
        app.register_customer(MIA, customer_id="k-1", name="Bager Hansen ApS")
        app.register_customer(MIA, customer_id="k-2", name="Kiosken")
        app.assess_potential(MIA, "k-1", amount="389999.99")
        app.assess_potential(MIA, "k-1", amount="390000")
        messages = read_topic(kafka_bootstrap, topic, want=6)
    finally:
        stop.set()
        worker.join(timeout=10)
        publisher.close()
        app.close()
    found = by_key(messages)
    assert set(found) == {"k-1", "k-2"}
    k1 = snapshots(found["k-1"])
    assert [(s.version, s.segment, s.prioritized) for s in k1] == [
        (1, Segment.UNSEGMENTED, False),
        (2, Segment.UNSEGMENTED, False),
        (3, Segment.B, True),
        (4, Segment.B, True),
        (5, Segment.A, True),
    ]
    assert [d.id for d in found["k-1"]] == [f"k-1:{v}" for v in range(1, 6)]
