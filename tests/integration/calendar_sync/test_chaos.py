"""Chaos: a few hundred activities through Kafka into a Graph fake that throttles 30% of the
requests and loses 10% of the answers to creates (after creating). Afterwards each activity
has exactly one event, counted by its extended property, and no mailbox ever had more than
four requests in flight although six consumers share the two mailboxes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from calendar_sync.settings import CalendarSyncSettings
from crm_contracts.activity import ActivityEvent
from crm_contracts.enums import SyncStatus
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging.transport import KafkaTransport

from tests.fakes import GraphFake
from tests.integration.calendar_sync.support import (
    ANNA,
    BO,
    Activity,
    Harness,
    activity_ids,
    tagged,
    unique_topics,
)
from tests.support.polling import wait_until

ACTIVITIES = 200
CONSUMERS = 6


def test_chaos_leaves_exactly_one_event_per_activity(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    fake: GraphFake,
    tmp_path: Path,
) -> None:
    fake.faults.throttle_ratio = 0.3
    fake.faults.lose_create_response_ratio = 0.1
    fake.faults.retry_after = "0.01"
    fake.faults.latency = 0.003  # keeps requests in flight long enough to overlap
    harness = Harness.build(
        kafka,
        unique_topics(topic_factory, partitions=CONSUMERS),
        store,
        tmp_path,
        fake=fake,
        options=CalendarSyncSettings(consumers=CONSUMERS),
    )
    activities = [Activity(owner=(ANNA, BO)[n % 2]) for n in range(ACTIVITIES)]
    messages: list[ActivityEvent] = [a.planned() for a in activities]
    # Every other activity is also moved: updates go through the same weather.
    messages += [a.moved(a.starts_at + timedelta(days=1)) for a in activities[::2]]
    began = time.monotonic()
    harness.start()
    try:
        harness.send(*messages)
        wanted = {str(a.id): a.version for a in activities}

        def all_applied() -> bool:
            rows = harness.service.state.query("SELECT activity_id, version FROM {t}entries")
            done = {r["activity_id"]: r["version"] for r in rows}
            return all(done.get(key, 0) >= version for key, version in wanted.items())

        wait_until(all_applied, timeout=90, interval=0.1, message="every activity applied")
        elapsed = time.monotonic() - began
        harness.stop()
        check(harness, fake, activities, len(messages), elapsed)
    finally:
        harness.close()


def check(
    harness: Harness, fake: GraphFake, activities: list[Activity], messages: int, elapsed: float
) -> None:
    wanted = {str(a.id) for a in activities}
    counted = Counter(activity_ids(tagged(fake, ANNA) + tagged(fake, BO)))
    assert set(counted) == set(wanted)
    assert set(counted.values()) == {1}, [k for k, n in counted.items() if n > 1]
    for activity in activities:
        record = harness.service.state.get(str(activity.id))
        assert record is not None
        assert record.status is SyncStatus.SYNCED
        event = next(e for e in fake.events(activity.owner) if e["id"] == record.event_id)
        assert event["start"]["dateTime"].startswith(f"{activity.starts_at.astimezone():%Y}")
    outcomes = Counter(r.outcome for r in fake.requests())
    peaks = {m: fake.max_concurrency_seen(m) for m in (ANNA, BO)}
    print(
        f"\nchaos: {ACTIVITIES} activities, {messages} messages in {elapsed:.1f}s;"
        f" {len(fake.requests())} Graph requests {dict(outcomes)}; peak in flight {peaks}"
    )
    assert outcomes["throttle"] > 0
    assert outcomes["lost_response"] > 0
    assert all(peak <= 4 for peak in peaks.values())
    assert fake.concurrency_rejections(ANNA) == fake.concurrency_rejections(BO) == 0
