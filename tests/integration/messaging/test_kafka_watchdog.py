"""A Kafka member whose group membership never settles re-joins and goes on consuming."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from crm_contracts.wire import WireMessage
from crm_platform.messaging.kafka import KafkaConsumer, KafkaPublisher
from kafka.structs import ConsumerGroupMetadata, MemberState

from tests.support.polling import wait_until


def test_a_stalled_membership_is_replaced_by_a_fresh_join(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = topic_factory("watchdog", partitions=1)
    got: list[bytes] = []
    publisher = KafkaPublisher(kafka_bootstrap, client_id="watchdog-test")
    consumer = KafkaConsumer(
        kafka_bootstrap,
        [topic],
        f"watchdog-{topic}",
        lambda m, d: got.append(m.value),
        dlq=publisher,
    )
    monkeypatch.setattr(KafkaConsumer, "STALLED_AFTER_S", 0.5)
    stuck = consumer._consumer
    monkeypatch.setattr(
        stuck, "group_metadata", lambda: ConsumerGroupMetadata(state=MemberState.REBALANCING)
    )
    try:
        wait_until(
            lambda: consumer.poll_once(0.2) >= 0 and consumer._consumer is not stuck,
            timeout=30,
            message="a fresh member after the stall",
        )
        publisher.publish([WireMessage(topic, "k", b"after the re-join")])
        wait_until(
            lambda: consumer.poll_once(0.2) >= 0 and got,
            timeout=30,
            message="a message consumed by the fresh member",
        )
        assert got == [b"after the re-join"]
    finally:
        consumer.close()
        publisher.close()
