"""The customer directory consumes `crm.customers.v1` from the real broker with tracking per
partition: snapshots land, an older one never overwrites a newer one, a redelivery has no
second effect, and a poison message is dead-lettered while the next one is still applied."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from activity.consumers import CustomerDirectory
from crm_contracts.cloudevents import encode
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import Segment
from crm_contracts.topics import SOURCE_SEGMENTATION
from crm_contracts.wire import WireMessage
from crm_platform.messaging import Delivery, dead_letter_topic
from crm_platform.messaging.transport import KafkaTransport
from kafka import KafkaConsumer, TopicPartition

from tests.support.polling import wait_until


def snapshot(customer_id: str, version: int, segment: Segment, name: str) -> CustomerSnapshot:
    return CustomerSnapshot(
        customer_id=customer_id,
        name=name,
        segment=segment,
        prioritized=segment in (Segment.A, Segment.B),
        version=version,
        updated_at=datetime(2026, 1, version, tzinfo=UTC),
        actor="segmentation",
    )


def wire(message: CustomerSnapshot, topic: str) -> WireMessage:
    return encode(
        message,
        source=SOURCE_SEGMENTATION,
        event_id=f"{message.customer_id}:{message.version}",
        topic=topic,
    )


@pytest.fixture
def running(
    directory: CustomerDirectory, kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> Iterator[tuple[KafkaTransport, str]]:
    topic = topic_factory("customers", partitions=3)
    transport = KafkaTransport(kafka_bootstrap, client_id="test-directory")
    stop = threading.Event()
    consumer = transport.consumer([topic], f"directory-{topic}", directory.handle, stop=stop)
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    yield transport, topic
    stop.set()
    thread.join(timeout=30)
    consumer.close()


def test_snapshots_from_the_broker_fill_the_directory_in_version_order(
    running: tuple[KafkaTransport, str],
    directory: CustomerDirectory,
) -> None:
    transport, topic = running
    publisher = transport.publisher()
    publisher.publish(
        [
            wire(snapshot("c1", 1, Segment.C, "Bager Hansen"), topic),
            wire(snapshot("c1", 3, Segment.A, "Bager Hansen ApS"), topic),
            wire(snapshot("c1", 2, Segment.B, "Old name"), topic),
            wire(snapshot("c2", 1, Segment.D, "Kiosken"), topic),
        ]
    )
    entry = wait_until(
        lambda: directory.get("c2") and directory.get("c1"),
        timeout=30,
        message="both customers in the directory",
    )
    assert entry
    c1 = directory.get("c1")
    assert c1 is not None
    assert (c1.name, c1.segment, c1.prioritized) == ("Bager Hansen ApS", "A", True)
    positions = [directory.position(f"{topic}:{p}") for p in range(3)]
    assert any(p is not None for p in positions), "tracked per partition"
    publisher.close()


def test_a_poison_message_is_dead_lettered_and_the_next_one_applied(
    running: tuple[KafkaTransport, str],
    directory: CustomerDirectory,
    kafka_bootstrap: str,
) -> None:
    transport, topic = running
    publisher = transport.publisher()
    good = wire(snapshot("c9", 1, Segment.B, "Efter giften"), topic)
    poison = WireMessage(topic, "c9", b"{not json", good.headers)
    publisher.publish([poison, good])
    wait_until(lambda: directory.get("c9"), timeout=30, message="the message after the poison")
    reader = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    dlq = dead_letter_topic(topic)
    try:

        def dead_letters() -> list[bytes]:
            partitions = reader.partitions_for_topic(dlq) or set()
            reader.assign([TopicPartition(dlq, p) for p in partitions])
            return [r.value for records in reader.poll(timeout_ms=500).values() for r in records]

        letters = wait_until(dead_letters, timeout=30, message="the dead letter")
        assert letters == [b"{not json"]
    finally:
        reader.close()
        publisher.close()


def test_a_redelivered_snapshot_has_no_second_effect(directory: CustomerDirectory) -> None:
    first = wire(snapshot("c5", 2, Segment.B, "Anden version"), "crm.customers.v1")
    directory.handle(first, Delivery("crm.customers.v1", 0, 10))
    newer = snapshot("c5", 3, Segment.A, "Tredje version")
    directory.apply_snapshot(newer)
    directory.handle(first, Delivery("crm.customers.v1", 0, 10))
    entry = directory.get("c5")
    assert entry is not None
    assert entry.name == "Tredje version"
    assert directory.position("crm.customers.v1:0") == 10
