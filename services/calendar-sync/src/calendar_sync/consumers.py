"""Inbound messages: activity events into calendars, customer snapshots into names.

Both handlers skip a message whose partition position is already tracked, and record the
position in the same transaction as their effect, so redelivery has no second effect. The
activity handler also skips events at or below the version it last applied: a relay that
publishes twice puts the same event at two offsets.

Errors: a message that cannot be read goes straight to the dead-letter topic (the
Dispatcher's poison errors); a calendar that refuses the entry for good (a 4xx other than
throttling) too, as `PoisonMessage`; throttling that outlasted the client's own retries
is retried a bounded number of times, then dead-lettered with the reason. Every failed
attempt is also noted on the activity's row (status `failed`, the error), so it shows in
the API and on crm.calendar.sync.v1.

Customer names: the subject shows the customer's name when its snapshot came first, else
the customer id; when a snapshot brings a name later (or a new one), the entries showing
another name are written again. That refresh runs after the snapshot is committed; should
it fail or the process stop, the stale rows stay queryable (`SyncState.stale_names`) and
are picked up by the sweep at the next start or by reconciliation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from crm_contracts.activity import ActivityEvent, ActivityPlanned
from crm_contracts.cloudevents import decode, is_tombstone
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.errors import ContractError, InvalidMessage
from crm_contracts.wire import WireMessage
from crm_platform.messaging import Delivery, PoisonMessage
from eventsourcing.persistence import IntegrityError

from calendar_sync.domain import ActivityView, fold
from calendar_sync.graph import GraphError
from calendar_sync.metrics import SyncMetrics
from calendar_sync.projector import MAX_CONFLICTS, ConcurrentUpdates, Projector
from calendar_sync.state import Inbound, SyncState

log = logging.getLogger(__name__)

# 4xx answers that may change on their own: retry those, refuse the rest for good.
_TRANSIENT_4XX = frozenset({408, 409, 412, 423, 429})


class ActivityProjection:
    """The handler for crm.activity.events.v1."""

    def __init__(
        self,
        projector: Projector,
        metrics: SyncMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.projector = projector
        self.state: SyncState = projector.state
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
        first = self.state.inbound(delivery, str(event.activity_id), event.customer_id)
        if first.seen:
            return
        inbound: Inbound | None = first
        kind = type(event).__name__
        try:
            for _ in range(MAX_CONFLICTS):
                outcome = self._apply(event, delivery, inbound)
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
        self, event: ActivityEvent, delivery: Delivery, inbound: Inbound | None
    ) -> str | None:
        """The outcome when committed; None when another writer changed the row first.

        `inbound`: the row and name as read with the position check (None: read them now).
        """
        activity_id = str(event.activity_id)
        if inbound is not None:
            before = inbound.record
            names: dict[str, str | None] = {event.customer_id: inbound.customer_name}
        else:
            before, names = self.state.get(activity_id), {}
        if before is not None and event.version <= before.version:
            self.state.track(delivery)
            return "stale"
        view = fold(before.view if before is not None else None, event)
        if view is None:
            self.state.track(delivery)
            return "ignored"
        # A plan's first create is deduplicated by its transactionId; anything else may
        # follow an attempt that created the event under another version's transactionId.
        look_first = not (isinstance(event, ActivityPlanned) and before is None)
        try:
            done, record = self.projector.write(
                before, view, look_first=look_first, track=delivery, names=names
            )
        except IntegrityError:
            raise  # the position is tracked already: not a failure of this activity
        except Exception as error:
            self._failed(view, error)
            refused = _refused_for_good(error)
            if refused is None:
                raise
            raise refused from error
        return record.status.value if done else None

    def _failed(self, view: ActivityView, error: Exception) -> None:
        self.metrics.failures.labels(type(error).__name__).inc()
        log.warning(
            "calendar write for activity %s v%d failed: %s", view.activity_id, view.version, error
        )
        self.state.record_failure(view, f"{type(error).__name__}: {error}", self.clock())


def _refused_for_good(error: Exception) -> PoisonMessage | None:
    """A calendar answer that retrying cannot change, as a message for the dead-letter topic."""
    if (
        isinstance(error, GraphError)
        and 400 <= error.status < 500
        and error.status not in _TRANSIENT_4XX
    ):
        return PoisonMessage(f"the calendar refused the entry: {error}")
    return None


class CustomerNames:
    """The handler for crm.customers.v1: names for the subject line."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector
        self.state: SyncState = projector.state

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
            self.state.apply_customer(snapshot.customer_id, snapshot, delivery)
        except IntegrityError:
            return  # applied by another member of the group
        self.projector.refresh_names(snapshot.customer_id)
