"""A lane killed between its calendar write and its commit, then a new service on the same
state: no duplicate event, no missed update (the row stays due; a create looks first, an update
writes the same content, a remove of a removed entry counts as done)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from calendar_sync.calendar import Calendar, Placed, Remote
from calendar_sync.domain import CalendarEntry
from calendar_sync.metrics import SyncMetrics
from calendar_sync.service import graph_calendar
from calendar_sync.settings import CalendarSyncSettings
from crm_contracts.activity import ActivityEvent
from crm_contracts.enums import ActivityType
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging.transport import KafkaTransport

from tests.fakes import GraphFake
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

# One lane per service, so the one that dies is the only one that could write.
OPTIONS = CalendarSyncSettings(lane_workers=1, lease_seconds=2.0)


class Killed(BaseException):
    """Not an Exception: nothing on the way up (retry policy, supervisor) catches it."""


class DiesAfterWrite:
    """The calendar port, but the `nth` write that succeeds kills the calling thread."""

    def __init__(self, inner: Calendar, nth: int) -> None:
        self.inner, self.nth, self.writes = inner, nth, 0
        self.kind = inner.kind
        self.died = threading.Event()
        self._lock = threading.Lock()

    def _written(self) -> None:
        with self._lock:
            self.writes += 1
            if self.writes != self.nth:
                return
        self.died.set()
        raise Killed(f"killed after calendar write {self.nth}")

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
        placed = self.inner.create(
            mailbox, activity_id, entry, version=version, keep=keep, look=look
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

    def find_all(self, mailbox: str, activity_id: str) -> list[Remote]:
        return self.inner.find_all(mailbox, activity_id)

    def window(self, mailbox: str, start: datetime, end: datetime) -> list[Remote]:
        return self.inner.window(mailbox, start, end)


# The lane's thread is meant to die with Killed: pytest need not report it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("nth", [1, 17, 40])
def test_a_lane_killed_before_its_commit_is_replaced_without_duplicates_or_gaps(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    fake: GraphFake,
    tmp_path: Path,
    nth: int,
) -> None:
    topics = unique_topics(topic_factory)
    graph = graph_calendar(graph_settings(fake), SyncMetrics())
    dying_calendar = DiesAfterWrite(graph, nth)
    dying = Harness.build(
        kafka, topics, store, tmp_path, calendar=dying_calendar, options=OPTIONS
    ).start()
    activities = [Activity(owner=(ANNA, BO)[n % 2]) for n in range(12)]
    # Phase by phase, so that each phase is written (the lane writes the latest view only)
    # and the nth write comes: 12 creates, 12 moves, 12 retypes, 6 creates and 6 removals.
    phases: list[list[ActivityEvent]] = [
        [a.planned() for a in activities],
        [a.moved(a.starts_at + timedelta(days=2)) for a in activities],
        [a.retyped(ActivityType.PROPOSAL_MEETING) for a in activities],
        [a.reassigned(ANNA) for a in activities[1::2]],  # Bo's go to Anna
    ]
    sent: dict[str, int] = {}

    def phase_done_or_died() -> bool:
        return dying_calendar.died.is_set() or all(
            (r := dying.service.state.get(activity_id)) is not None
            and r.version == version
            and r.due_at is None
            for activity_id, version in sent.items()
        )

    try:
        for phase in phases:
            dying.send(*phase)
            sent.update({str(e.activity_id): e.version for e in phase})
            if dying_calendar.died.is_set():
                continue
            wait_until(phase_done_or_died, timeout=60, message="the phase written")
        assert dying_calendar.died.is_set()
    finally:
        dying.stop()  # what is left of it: consumers and the relay
    written = sum(
        1
        for a in activities
        if (r := dying.record(a)) is not None and r.version == a.version and r.due_at is None
    )
    assert written < len(activities)

    # A new service over the same state, with a healthy calendar.
    replacement = Harness.build(kafka, topics, store, tmp_path, calendar=graph, options=OPTIONS)
    replacement.start()
    try:
        for activity in activities:
            replacement.applied(activity, timeout=60)
        wait_until(lambda: tagged(fake, BO) == [], timeout=30, message="Bo's copies removed")
        events = tagged(fake, ANNA)
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
