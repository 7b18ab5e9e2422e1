"""Chaos: a few hundred activity events through Kafka into a Graph fake as unkind as Graph.

Three calendar-sync services (three pods: one consumer each in one group, lanes of their own,
one shared state) against a fake that throttles 30% of the requests with Outlook's whole-second
Retry-After of 30 to 300 s (its clock runs 2000 times faster, and so does the services'), loses
10% of the answers to creates (after creating), stores 5% of the creates late (after their
answer was lost), while one owner's mailbox refuses every request (404 ErrorInvalidUser, then
403 ErrorAccessDenied) and a consultant deletes one entry in Outlook.

Afterwards: each activity has exactly one event, counted by its extended property; no mailbox
ever had more than four requests in flight across all the services; none of the refusing
mailbox's activities is marked deleted, and each syncs once the mailbox is back; the user's
delete ends as deleted_in_outlook and is never re-created.
"""

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

from tests.fakes import FakeClock, GraphFake
from tests.integration.calendar_sync.support import (
    ANNA,
    BO,
    Activity,
    Harness,
    activity_ids,
    graph_settings,
    tagged,
    unique_topics,
)
from tests.support.polling import wait_until

CARL = "carl@example.dk"  # the mailbox that refuses us
ACTIVITIES = 180
SERVICES = 3
SCALE = 2000  # the fake's (and the services') seconds per real second


def all_written(harness: Harness, activities: list[Activity]) -> bool:
    rows = harness.service.state.query("SELECT activity_id, version, due_at FROM {t}entries")
    done = {r["activity_id"]: r for r in rows}
    return all(
        (row := done.get(str(a.id))) is not None
        and row["version"] >= a.version
        and row["due_at"] is None
        for a in activities
    )


def test_chaos_leaves_exactly_one_event_per_activity(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    tmp_path: Path,
) -> None:
    clock = FakeClock(scale=SCALE)
    with GraphFake(seed=7, clock=clock) as fake:
        faults = fake.faults
        faults.throttle_ratio = 0.3  # Retry-After: whole seconds from 30 to 300
        faults.lose_create_response_ratio = 0.1
        faults.late_store_ratio = 0.05
        faults.late_store_delay = 10.0  # at most; the services look again after 60 s
        faults.latency = 0.002  # keeps requests in flight long enough to overlap
        fake.mailbox_unavailable(CARL, "invalid_user")
        options = CalendarSyncSettings(
            consumers=1,
            lane_workers=2 if store.is_postgres else 1,
            unavailable_max_check_seconds=3600.0,
        )
        topics = unique_topics(topic_factory, partitions=6)
        services = [
            Harness.build(
                kafka,
                topics,
                store,
                tmp_path / f"pod-{n}",
                fake=fake,
                options=options,
                graph=graph_settings(fake, settle_seconds=60.0),
            )
            for n in range(SERVICES)
        ]
        owners = (ANNA, BO, CARL)
        activities = [Activity(owner=owners[n % 3]) for n in range(ACTIVITIES)]
        reachable = [a for a in activities if a.owner != CARL]
        refusing = [a for a in activities if a.owner == CARL]
        messages: list[ActivityEvent] = [a.planned() for a in activities]
        # Every other activity is also moved: updates go through the same weather.
        messages += [a.moved(a.starts_at + timedelta(days=1)) for a in activities[::2]]
        began = time.monotonic()
        for service in services:
            service.start()
        harness = services[0]
        try:
            harness.send(*messages)
            wait_until(
                lambda: all_written(harness, reachable),
                timeout=150,
                interval=0.1,
                message="every reachable activity written",
            )
            elapsed = time.monotonic() - began

            # A consultant deletes one entry in Outlook; later changes must not bring it back.
            deleted = reachable[0]
            deleted_id = harness.record(deleted).event_id  # type: ignore[union-attr]
            assert deleted_id is not None
            fake.delete_as_user(deleted.owner, deleted_id)
            harness.send(deleted.moved(deleted.starts_at + timedelta(days=7)))
            assert harness.applied(deleted).status is SyncStatus.DELETED_IN_OUTLOOK

            # The administrator fixes the licence, the access policy still leaves Carl out.
            fake.mailbox_unavailable(CARL, "access_denied")
            wait_until(
                lambda: all(
                    (r := harness.record(a)) is not None and r.error == "ErrorAccessDenied"
                    for a in refusing
                ),
                timeout=30,
                message="Carl's activities showing the new refusal",
            )
            for activity in refusing:
                record = harness.record(activity)
                assert record is not None
                assert record.status is SyncStatus.MAILBOX_UNAVAILABLE
                assert record.event_id is None
            assert tagged(fake, CARL) == []

            fake.mailbox_available(CARL)
            wait_until(
                lambda: all_written(harness, refusing),
                timeout=60,
                interval=0.1,
                message="Carl's activities written once the mailbox is back",
            )
            recovered = time.monotonic() - began
            for service in services:
                service.stop()
            check(harness, fake, activities, deleted, deleted_id, len(messages))
            outcomes = Counter(r.outcome for r in fake.requests())
            peaks = {m: fake.max_concurrency_seen(m) for m in owners}
            print(
                f"\nchaos: {ACTIVITIES} activities, {len(messages) + 1} messages, "
                f"{SERVICES} services; reachable written in {elapsed:.1f}s, all by "
                f"{recovered:.1f}s; {len(fake.requests())} Graph requests {dict(outcomes)}; "
                f"peak in flight {peaks}"
            )
            assert outcomes["throttle"] > 0
            assert outcomes["lost_response"] > 0
            assert outcomes["late_store"] > 0
            assert outcomes["mailbox_unavailable"] > 0
            assert outcomes["access_denied"] > 0
            assert all(peak <= 4 for peak in peaks.values()), peaks
            assert all(fake.concurrency_rejections(m) == 0 for m in owners)
        finally:
            for service in services:
                service.close()


def check(
    harness: Harness,
    fake: GraphFake,
    activities: list[Activity],
    deleted: Activity,
    deleted_id: str,
    messages: int,
) -> None:
    wait_until(lambda: fake.pending_stores() == 0, message="late stores landed")
    counted = Counter(activity_ids(tagged(fake, ANNA) + tagged(fake, BO) + tagged(fake, CARL)))
    wanted = {str(a.id) for a in activities if a is not deleted}
    assert set(counted) == wanted
    assert set(counted.values()) == {1}, [k for k, n in counted.items() if n > 1]
    assert [e["id"] for e in fake.deleted_items(deleted.owner)] == [deleted_id]
    for activity in activities:
        record = harness.service.state.get(str(activity.id))
        assert record is not None
        if activity is deleted:
            assert record.status is SyncStatus.DELETED_IN_OUTLOOK
            continue
        assert record.status is SyncStatus.SYNCED, (activity.owner, record)
        event = next(e for e in fake.events(activity.owner) if e["id"] == record.event_id)
        assert event["start"]["dateTime"].startswith(f"{activity.starts_at.astimezone():%Y}")
