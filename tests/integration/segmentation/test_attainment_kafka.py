"""Completing a status meeting updates the customer's attainment, with the consumer reading
`crm.activity.events.v1` from the real broker (SQLite and PostgreSQL). How fast is printed
here and measured in `make bench` (propagation), never asserted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from crm_contracts.enums import ActivityType
from crm_platform.messaging.transport import KafkaTransport
from segmentation.application import SegmentationApplication
from segmentation.attainment import ActivityEventsConsumer

from tests.integration.segmentation.test_attainment_support import (
    completed,
    planned,
    register,
    utc,
    view,
    wire,
)
from tests.support.clock import ManualClock
from tests.support.polling import wait_until

__all__ = ["view"]  # fixture

S = ActivityType.STATUS_MEETING


@pytest.fixture
def running(
    view: ActivityEventsConsumer, kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> Iterator[tuple[KafkaTransport, str]]:
    topic = topic_factory("activity-events", partitions=3)
    transport = KafkaTransport(kafka_bootstrap, client_id="test-attainment")
    stop = threading.Event()
    consumer = transport.consumer([topic], f"attainment-{topic}", view.handle, stop=stop)
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    yield transport, topic
    stop.set()
    thread.join(timeout=30)
    consumer.close()


def test_completing_a_status_meeting_reaches_the_attainment_over_kafka(
    app: SegmentationApplication,
    clock: ManualClock,
    view: ActivityEventsConsumer,
    running: tuple[KafkaTransport, str],
) -> None:
    transport, topic = running
    register(app, clock, "c-live", potential="200000", on=utc(2025, 12, 1, 9))
    publisher = transport.publisher()
    try:
        # Warm up: the group's first partition assignment is not what the criterion measures.
        later = planned("live-next", "c-live", S, utc(2026, 4, 1, 9))
        publisher.publish([wire(later, topic)])
        wait_until(
            lambda: view.customer_attainment("c-live", 2026, clock.now).scheduled.get(S),
            timeout=60,
            message="the consumer to be assigned and running",
        )
        meeting = planned("live-held", "c-live", S, utc(2026, 3, 2, 6))
        publisher.publish([wire(meeting, topic)])
        started = time.monotonic()
        publisher.publish([wire(completed(meeting, utc(2026, 3, 2, 7)), topic)])
        found = wait_until(
            lambda: (
                (a := view.customer_attainment("c-live", 2026, clock.now))
                and a.attainment.lines[S].actual == 1
                and a
            ),
            timeout=10,
            interval=0.01,
            message="the completed status meeting in the attainment",
        )
        latency = time.monotonic() - started
    finally:
        publisher.close()
    # Measured, not asserted: speed belongs to `make bench`, not to a pass/fail here.
    print(f"attainment latency from publish: {latency * 1000:.0f} ms")
    assert found.attainment.lines[S].remaining == 1  # B wants 2 status meetings
