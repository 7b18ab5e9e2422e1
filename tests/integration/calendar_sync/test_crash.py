"""A consumer killed between its calendar call and its commit, then a new one on the same group:
no duplicate event, no missed update."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from calendar_sync.calendar import Calendar, Placed, Remote
from calendar_sync.domain import CalendarEntry
from calendar_sync.metrics import SyncMetrics
from calendar_sync.service import graph_calendar
from crm_contracts.activity import ActivityEvent
from crm_contracts.enums import ActivityType
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging.transport import KafkaTransport

from tests.fakes import GraphFake
from tests.integration.calendar_sync.support import (
    ANNA,
    BO,
    FAST_RETRIES,
    Activity,
    Harness,
    activity_ids,
    graph_settings,
    tagged,
    unique_topics,
)


class Killed(BaseException):
    """Not an Exception: nothing on the way up (retry policy, supervisor) catches it."""


class DiesAfterWrite:
    """The calendar port, but the `nth` write that succeeds kills the calling thread."""

    def __init__(self, inner: Calendar, nth: int) -> None:
        self.inner, self.nth, self.writes = inner, nth, 0
        self.kind = inner.kind

    def _written(self) -> None:
        self.writes += 1
        if self.writes == self.nth:
            raise Killed(f"killed after calendar write {self.nth}")

    def create(
        self,
        mailbox: str,
        activity_id: str,
        entry: CalendarEntry,
        *,
        version: int,
        look_first: bool,
    ) -> Placed:
        placed = self.inner.create(
            mailbox, activity_id, entry, version=version, look_first=look_first
        )
        self._written()
        return placed

    def update(
        self, mailbox: str, activity_id: str, event_id: str, entry: CalendarEntry, *, version: int
    ) -> Placed | None:
        placed = self.inner.update(mailbox, activity_id, event_id, entry, version=version)
        self._written()
        return placed

    def remove(self, mailbox: str, activity_id: str, event_id: str) -> None:
        self.inner.remove(mailbox, activity_id, event_id)
        self._written()

    def fetch(self, mailbox: str, activity_id: str, event_id: str) -> Remote | None:
        return self.inner.fetch(mailbox, activity_id, event_id)

    def find(self, mailbox: str, activity_id: str) -> Remote | None:
        return self.inner.find(mailbox, activity_id)


@pytest.mark.parametrize("nth", [1, 17, 40])
def test_a_consumer_killed_before_its_commit_is_replaced_without_duplicates_or_gaps(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    fake: GraphFake,
    tmp_path: Path,
    nth: int,
) -> None:
    topics = unique_topics(topic_factory)
    graph = graph_calendar(graph_settings(fake), SyncMetrics())
    dying = Harness.build(kafka, topics, store, tmp_path, calendar=DiesAfterWrite(graph, nth))
    activities = [Activity(owner=(ANNA, BO)[n % 2]) for n in range(12)]
    messages: list[ActivityEvent] = [a.planned() for a in activities]
    messages += [a.moved(a.starts_at + timedelta(days=2)) for a in activities]
    messages += [a.retyped(ActivityType.PROPOSAL_MEETING) for a in activities]
    messages += [a.reassigned(ANNA) for a in activities[1::2]]  # Bo's go to Anna
    dying.send(*messages)

    consumer = kafka.consumer(
        [topics.activities],
        f"{topics.group}.activities",
        dying.service.activity_handler().handle,
        policy=FAST_RETRIES,
    )
    died = threading.Event()

    def run() -> None:
        try:
            consumer.run(threading.Event())
        except Killed:
            died.set()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert died.is_set()
    assert not thread.is_alive()
    consumer.close()  # what the broker sees when a process dies: the member is gone
    applied_before = sum(
        1 for a in activities if (r := dying.record(a)) is not None and r.version == a.version
    )
    assert applied_before < len(activities)

    # A new member of the same group, over the same state, with a healthy calendar.
    replacement = Harness.build(kafka, topics, store, tmp_path, calendar=graph).start()
    try:
        for activity in activities:
            replacement.applied(activity, timeout=60)
        events = tagged(fake, ANNA)
        assert tagged(fake, BO) == []
        counted = Counter(activity_ids(events))
        assert counted == Counter({str(a.id): 1 for a in activities})
        for activity in activities:
            record = replacement.record(activity)
            assert record is not None
            event = next(e for e in events if e["id"] == record.event_id)
            assert event["subject"].startswith("Oplægsmøde: ")
            assert event["categories"] == ["CRM", "Oplægsmøde"]
            wanted = activity.starts_at.astimezone(UTC).replace(tzinfo=None)
            assert event["start"]["dateTime"] == wanted.isoformat(timespec="microseconds") + "0"
    finally:
        replacement.close()
        dying.close()
