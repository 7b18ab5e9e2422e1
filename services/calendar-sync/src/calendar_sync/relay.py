"""Relays sync status changes to crm.calendar.sync.v1; the state rows are the outbox.

Every commit of a row raises its `revision`; this relay publishes the rows whose
`published` is behind, waits for the broker's acknowledgement, then records what it
published. A crash in between publishes the same revision again (at-least-once); the
CloudEvents id `<activity id>:<revision>` and the message's `version` let consumers drop
the repeat. Only a row's latest state is published: a status is a state, not a history,
so skipping an intermediate revision loses nothing (like the compacted customers topic).
"""

from __future__ import annotations

import logging
import threading
from uuid import UUID

from crm_contracts.calendar_sync import CalendarSyncStatus
from crm_contracts.cloudevents import encode
from crm_contracts.topics import CALENDAR_SYNC, SOURCE_CALENDAR_SYNC
from crm_contracts.wire import WireMessage
from crm_platform.follower import Waker
from crm_platform.messaging import Publisher
from crm_platform.parking import ParkingLot
from pydantic import ValidationError

from calendar_sync.metrics import SyncMetrics
from calendar_sync.state import SyncRecord, SyncState

log = logging.getLogger(__name__)

ACTOR = "calendar-sync"
STATUS_WORKER = "calendar-sync-status-relay"


def status_message(record: SyncRecord, revision: int) -> CalendarSyncStatus:
    return CalendarSyncStatus(
        activity_id=UUID(record.activity_id),
        mailbox=record.mailbox,
        status=record.status,
        outlook_event_id=record.event_id,
        activity_version=max(record.version, record.error_version or 0, 1),
        error=(record.error or "")[:500] or None,
        version=revision,
        actor=ACTOR,
        occurred_at=record.updated_at,
    )


class StatusRelay:
    def __init__(
        self,
        state: SyncState,
        publisher: Publisher,
        metrics: SyncMetrics,
        *,
        topic: str = CALENDAR_SYNC,
        batch_size: int = 200,
        parking: ParkingLot | None = None,
    ) -> None:
        self.state = state
        self.publisher = publisher
        self.metrics = metrics
        self.topic = topic
        self.batch_size = batch_size
        self.parking = parking

    def step(self) -> int:
        """Publish one batch; returns how many rows it covered (0: nothing pending)."""
        pending = self.state.unpublished(self.batch_size)
        messages: list[WireMessage] = []
        for record, revision in pending:
            try:
                messages.append(self._message(record, revision))
            except (ValidationError, ValueError) as error:
                # Not publishable under the contract (e.g. an owner id that is no mailbox
                # address): parked, rather than block every later row. A status is a state,
                # so nothing waits behind it: a later revision that fits goes out.
                self._park(record, revision, error)
        if messages:
            self.publisher.publish(messages)
        if pending:
            self.state.mark_published([(r.activity_id, rev) for r, rev in pending])
        if len(pending) < self.batch_size:
            # A short batch was everything pending when read, and is published now: the
            # backlog is empty, and counting it again would cost a scan every step.
            self.metrics.unpublished.set(0)
        else:
            self.metrics.unpublished.set(self.state.unpublished_count())
        return len(pending)

    def retry_parked(self) -> int:
        """Publish again, as they are now, the statuses an operator marked for retry."""
        if self.parking is None:
            return 0
        resolved = 0
        for entry in self.parking.due(STATUS_WORKER):
            record = self.state.get(entry.subject)
            try:
                if record is not None:
                    self.publisher.publish([self._message(record, record.revision)])
            except (ValidationError, ValueError) as error:
                self.parking.failed_again(entry.id, error)
                continue
            with self.parking.transaction() as tx:
                self.parking.resolve(tx, entry.id)
            resolved += 1
        return resolved

    def _message(self, record: SyncRecord, revision: int) -> WireMessage:
        return encode(
            status_message(record, revision),
            source=SOURCE_CALENDAR_SYNC,
            event_id=f"{record.activity_id}:{revision}",
            topic=self.topic,
        )

    def _park(self, record: SyncRecord, revision: int, error: Exception) -> None:
        position = f"{record.activity_id}:{revision}"
        if self.parking is None:
            log.error("status of %s cannot be published: %s", record.activity_id, error)
        elif not self.parking.parked_at(STATUS_WORKER, position):
            self.parking.park_now(
                worker=STATUS_WORKER, position=position, subject=record.activity_id, error=error
            )

    def run(
        self,
        stop: threading.Event,
        waker: Waker,
        poll_interval: float = 1.0,
        *,
        gather: float = 0.2,
    ) -> None:
        """Publish until `stop`; after a wake-up, wait `gather` seconds for more saves.

        Every save wakes the relay; going at once made it run a step per save, as busy as
        the consumer it shares the machine with. Gathering makes one step cover the saves of
        the window, at `gather` seconds of extra status delay.
        """
        while not stop.is_set():
            try:
                if self.step() == self.batch_size:
                    continue  # a backlog: no need to wait for more
                self.retry_parked()
            except Exception:
                log.exception("status relay failed; retrying")
                stop.wait(poll_interval)
                continue
            waker.wait(poll_interval)
            stop.wait(gather)
