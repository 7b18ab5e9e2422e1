"""Inbound messages: activity events into the wanted state, customer snapshots into names.

Neither handler calls the calendar. An activity event is folded into the activity's row
(the view the calendar should show) and the row is marked due for its mailbox's lane
(lanes.py), which writes the calendar; a customer snapshot marks due the entries whose
subject shows another name. So a message never waits on Graph: throttling, a mailbox that is
unavailable, a slow answer pause the mailbox's lane, never the poll loop, and nothing that an
administrator can fix ends in a dead-letter topic.

Both handlers skip a message whose partition position is already tracked, and record the
position in the same transaction as their effect, so redelivery has no second effect. The
activity handler also skips events at or below the version it last applied: a relay that
publishes twice puts the same event at two offsets.

Errors: a message that cannot be read goes straight to the dead-letter topic (the
Dispatcher's poison errors); a database that is down is waited out (infrastructure errors).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from crm_contracts.activity import ActivityEvent, ActivityReassigned
from crm_contracts.cloudevents import decode, is_tombstone
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import SyncStatus
from crm_contracts.errors import ContractError, InvalidMessage
from crm_contracts.wire import WireMessage
from crm_platform.messaging import Delivery
from eventsourcing.persistence import IntegrityError

from calendar_sync.domain import ActivityView, fold, mailbox_of
from calendar_sync.metrics import SyncMetrics
from calendar_sync.projector import MAX_CONFLICTS, ConcurrentUpdates
from calendar_sync.state import Inbound, SyncRecord, SyncState

log = logging.getLogger(__name__)


def target_mailbox(event: ActivityEvent) -> str:
    """The mailbox whose calendar the event is about ('' when it names no owner)."""
    if isinstance(event, ActivityReassigned):
        return mailbox_of(event.to_owner)
    owner = getattr(event, "owner", None)
    return mailbox_of(owner) if isinstance(owner, str) else ""


def staged(
    before: SyncRecord | None,
    view: ActivityView,
    *,
    mailbox_code: str | None,
    now: datetime,
) -> SyncRecord:
    """The row wanting `view` in the calendar, due now for its mailbox's lane.

    An entry the user deleted stays deleted while the activity stays with that owner, so it
    is not even due; an activity of a mailbox known to be unavailable shows so at once.
    """
    status, error = SyncStatus.PENDING, None
    due: datetime | None = now
    error_version: int | None = None
    if (
        before is not None
        and before.status is SyncStatus.DELETED_IN_OUTLOOK
        and before.mailbox == view.owner
    ):
        status, due = SyncStatus.DELETED_IN_OUTLOOK, None
    elif mailbox_code is not None:
        status, error, error_version = SyncStatus.MAILBOX_UNAVAILABLE, mailbox_code, view.version
    return SyncRecord(
        activity_id=view.activity_id,
        view=view,
        version=view.version,
        mailbox=before.mailbox if before is not None else view.owner,
        event_id=before.event_id if before is not None else None,
        change_key=before.change_key if before is not None else None,
        status=status,
        error=error,
        error_version=error_version,
        shown_name=before.shown_name if before is not None else None,
        revision=(before.revision if before is not None else 0) + 1,
        updated_at=now,
        due_at=due,
    )


class ActivityProjection:
    """The handler for crm.activity.events.v1."""

    def __init__(
        self,
        state: SyncState,
        metrics: SyncMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.clock = clock

    def handle(self, message: WireMessage, delivery: Delivery) -> None:
        # Decoding first lets the position check share one statement with the row and name
        # reads (it needs the ids); a message it rejects is checked the slow way, so one
        # applied already is still skipped rather than dead-lettered.
        try:
            event = decode(message).message
            if not isinstance(event, ActivityEvent):
                raise InvalidMessage(
                    type(event).ce_type, "only activity events belong on this topic"
                )
        except ContractError:
            if self.state.has_seen(delivery.tracking_name, delivery.offset):
                return
            raise
        mailbox = target_mailbox(event)
        first = self.state.inbound(delivery, str(event.activity_id), event.customer_id, mailbox)
        if first.seen:
            return
        inbound: Inbound | None = first
        kind = type(event).__name__
        try:
            for _ in range(MAX_CONFLICTS):
                outcome = self._apply(event, delivery, inbound, mailbox)
                inbound = None  # a lost compare-and-set: the next attempt reads afresh
                if outcome is not None:
                    self.metrics.applied.labels(kind, outcome).inc()
                    lag = (self.clock() - event.occurred_at).total_seconds()
                    self.metrics.lag.set(max(lag, 0.0))
                    return
        except IntegrityError:
            # Another member of the group applied this position first (a rebalance).
            log.info("%s already applied elsewhere", delivery)
            return
        raise ConcurrentUpdates(f"activity {event.activity_id} kept changing")

    def _apply(
        self, event: ActivityEvent, delivery: Delivery, inbound: Inbound | None, mailbox: str
    ) -> str | None:
        """The outcome when committed; None when another writer changed the row first.

        `inbound`: the row, name and mailbox as read with the position check (None: now).
        """
        activity_id = str(event.activity_id)
        if inbound is not None:
            before, code = inbound.record, inbound.mailbox_code
        else:
            before = self.state.get(activity_id)
            known = self.state.mailbox(mailbox) if mailbox else None
            code = known.code if known is not None else None
        if before is not None and event.version <= before.version:
            self.state.track(delivery)
            return "stale"
        view = fold(before.view if before is not None else None, event)
        if view is None:
            self.state.track(delivery)
            return "ignored"
        record = staged(before, view, mailbox_code=code, now=self.clock())
        expected = before.revision if before is not None else 0
        if not self.state.save(record, expected_revision=expected, track=delivery):
            return None
        return record.status.value


class CustomerNames:
    """The handler for crm.customers.v1: names for the subject line."""

    def __init__(self, state: SyncState, clock: Callable[[], datetime]) -> None:
        self.state = state
        self.clock = clock

    def handle(self, message: WireMessage, delivery: Delivery) -> None:
        if self.state.has_seen(delivery.tracking_name, delivery.offset):
            return
        if is_tombstone(message):
            # A deleted customer: forget the name; entries keep the subject they have.
            self.state.apply_customer(message.key, None, delivery)
            return
        snapshot = decode(message).message
        if not isinstance(snapshot, CustomerSnapshot):
            raise InvalidMessage(
                type(snapshot).ce_type, "only customer snapshots belong on this topic"
            )
        try:
            # Entries showing another name are marked due in the same transaction: their
            # lanes write the new subject, and a crash cannot lose the refresh.
            self.state.apply_customer(snapshot.customer_id, snapshot, delivery, now=self.clock())
        except IntegrityError:
            return  # applied by another member of the group
