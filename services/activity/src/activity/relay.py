"""The relays: the activity events of the notification log → `crm.activity.events.v1`, and
the customer files' R8 gap openings and closings → `crm.activity.r8-gaps.v1`.

The notification log is the outbox. The relay reads the `Activity` events after its tracked
position, turns each into its contract message, publishes the batch, waits for the broker's
acks and only then records the batch's last position (`LogFollower` keeps that order). A
crash between the publish and the tracking publishes the batch again on restart: duplicates,
never gaps. Every message's `ce_id` is `"{activity_id}:{version}"`, the same on every
attempt, so consumers recognise a repeat.

The contract events are "fat" (an `ActivityMoved` also carries the owner, type and subject),
but a domain event holds only what changed. So the relay keeps the activities it has seen in
a small LRU cache and rolls each one forward event by event; on a miss (a restart mid-stream,
an eviction) it loads the activity as it was just before the event from the store.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from crm_contracts.activity import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityEdited,
    ActivityEvent,
    ActivityMoved,
    ActivityPlanned,
    ActivityReassigned,
    ActivityRegistered,
    ActivityRetyped,
    AttachmentAdded,
    DiscoveryProfile,
)
from crm_contracts.cloudevents import encode
from crm_contracts.enums import (
    ActivityType,
    AttachmentKind,
    Channel,
    GapClosedBecause,
    GapOpenedBecause,
    MoveReason,
)
from crm_contracts.gaps import FutureActivityGap, FutureActivityGapClosed, FutureActivityGapOpened
from crm_contracts.topics import ACTIVITY_EVENTS, R8_GAPS, SOURCE_ACTIVITY
from crm_contracts.wire import WireMessage
from crm_platform.follower import Batch
from crm_platform.messaging import Publisher
from crm_platform.parking import ParkingLot
from crm_platform.relay import Relay
from crm_platform.sqlview import SqlView
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic
from pydantic import ValidationError

from activity.application import ActivityApplication
from activity.domain import Activity, CustomerFile

log = logging.getLogger(__name__)

RELAYED_EVENTS: Final[tuple[type[Aggregate.Event], ...]] = (
    Activity.Planned,
    Activity.Registered,
    Activity.Moved,
    Activity.Retyped,
    Activity.Reassigned,
    Activity.Completed,
    Activity.Cancelled,
    Activity.AttachmentAdded,
    Activity.Edited,
)
"""Every event an `Activity` records; `CustomerFile` and idempotency records stay inside."""

RELAYED_TOPICS: Final[tuple[str, ...]] = tuple(get_topic(cls) for cls in RELAYED_EVENTS)

RELAY_TRACKING: Final = "activity_relay"


def relay_tracking(env: Mapping[str, str]) -> SqlView:
    """Where the relay records how far it has published: tracking only, no tables.

    It lives beside the event store (same SQLite file or PostgreSQL schema), so a restored
    backup of the store brings the relay's position with it.
    """
    return SqlView(env, name=RELAY_TRACKING)


def ce_id(activity_id: UUID | str, version: int) -> str:
    """The deterministic CloudEvents id of one change: equal on every publish of it."""
    return f"{activity_id}:{version}"


# -- mapping: pure functions of (domain event, the activity just before it) ------------------


def to_message(event: Aggregate.Event, before: Activity | None) -> ActivityEvent:
    """The contract message for `event`, given the activity as it was before (None: created).

    `version` is the activity's version after the event, `occurred_at` when it was recorded.
    """
    common: dict[str, Any] = {
        "activity_id": event.originator_id,
        "version": event.originator_version,
        "occurred_at": event.timestamp,
        "actor": _field(event, "actor"),
    }
    if isinstance(event, Activity.Planned):
        return ActivityPlanned(
            **common,
            customer_id=event.customer_id,
            owner=event.owner,
            type=ActivityType(event.type),
            channel=Channel(event.channel),
            subject=event.subject,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            agenda=event.agenda,
        )
    if isinstance(event, Activity.Registered):
        return ActivityRegistered(
            **common,
            customer_id=event.customer_id,
            owner=event.owner,
            type=ActivityType(event.type),
            channel=Channel(event.channel),
            held_at=event.held_at,
            booked=event.booked,
            imported=event.imported,
            subject=event.subject,
            note=event.note,
            next_step=event.next_step,
            discovery_profile=discovery_profile(event.discovery_profile),
            next_activity_id=event.next_activity_id,
        )
    if before is None:
        raise ValueError(
            f"{type(event).__qualname__} v{event.originator_version} of {event.originator_id} "
            "needs the activity's state before it"
        )
    common["customer_id"] = before.customer_id
    if isinstance(event, Activity.Moved):
        return ActivityMoved(
            **common,
            owner=before.owner,
            type=ActivityType(before.type),
            channel=Channel(before.channel),
            subject=_subject(before),
            from_starts_at=before.starts_at,
            from_ends_at=before.ends_at,
            to_starts_at=event.starts_at,
            to_ends_at=event.ends_at,
            reason=MoveReason(event.reason),
            note=event.note,
        )
    if isinstance(event, Activity.Retyped):
        return ActivityRetyped(
            **common,
            owner=before.owner,
            subject=_subject(before),
            starts_at=before.starts_at,
            ends_at=before.ends_at,
            from_type=ActivityType(before.type),
            to_type=ActivityType(event.type),
            from_channel=Channel(before.channel),
            to_channel=Channel(event.channel),
            reason=event.reason,
        )
    if isinstance(event, Activity.Reassigned):
        return ActivityReassigned(
            **common,
            from_owner=before.owner,
            to_owner=event.owner,
            type=ActivityType(before.type),
            channel=Channel(before.channel),
            subject=_subject(before),
            starts_at=before.starts_at,
            ends_at=before.ends_at,
            reason=getattr(event, "reason", None),
        )
    if isinstance(event, Activity.Edited):
        return ActivityEdited(
            **common,
            owner=before.owner,
            type=ActivityType(before.type),
            channel=Channel(before.channel),
            subject=event.subject,
            agenda=event.agenda,
            starts_at=before.starts_at,
            ends_at=before.ends_at,
        )
    if isinstance(event, Activity.Completed):
        return ActivityCompleted(
            **common,
            owner=before.owner,
            type=ActivityType(before.type),
            channel=Channel(before.channel),
            note=event.note,
            next_step=event.next_step,
            completed_at=event.held_at or event.timestamp,
            discovery_profile=discovery_profile(event.discovery_profile),
            next_activity_id=event.next_activity_id,
        )
    if isinstance(event, Activity.Cancelled):
        return ActivityCancelled(
            **common,
            owner=before.owner,
            reason=event.reason,
            next_activity_id=event.next_activity_id,
        )
    if isinstance(event, Activity.AttachmentAdded):
        return AttachmentAdded(
            **common,
            attachment_id=event.attachment_id,
            kind=AttachmentKind(event.kind),
            filename=event.filename,
            media_type=event.media_type,
            size=event.size,
            sha256=event.sha256,
            uri=event.uri,
        )
    raise TypeError(f"{type(event).__qualname__} is not an activity event the relay knows")


def discovery_profile(stored: Mapping[str, str] | None) -> DiscoveryProfile | None:
    """The stored profile (plain strings) as the contract's, with an exact DKK amount."""
    if stored is None:
        return None
    texts = {name: value for name, value in stored.items() if name != "potential_dkk"}
    potential = stored.get("potential_dkk")
    return DiscoveryProfile(
        **texts, potential_dkk=Decimal(potential) if potential not in (None, "") else None
    )


def to_wire(message: ActivityEvent, *, topic: str | None = None) -> WireMessage:
    """The CloudEvent for `message`, keyed by activity id, with its deterministic `ce_id`."""
    return encode(
        message,
        source=SOURCE_ACTIVITY,
        event_id=ce_id(message.activity_id, message.version),
        topic=topic,
    )


def _field(event: Aggregate.Event, name: str) -> Any:
    # Every relayed event class declares `actor`; the base class the signature names does not.
    return getattr(event, name)


def _subject(activity: Activity) -> str:
    # A registered activity may lack a subject, but only planned ones are moved, retyped or
    # reassigned, and planning requires one (R5).
    if not activity.subject:
        raise ValueError(f"activity {activity.id} has no subject to publish")
    return activity.subject


# -- state before each event -----------------------------------------------------------------


class ActivityStates:
    """The activities the relay has seen lately, each at the version of its last event."""

    def __init__(self, app: ActivityApplication, maxsize: int = 10_000) -> None:
        self._app = app
        self._maxsize = maxsize
        self._cache: OrderedDict[UUID, Activity] = OrderedDict()

    def before(self, event: Aggregate.Event) -> Activity | None:
        """The activity just before `event` (None when `event` creates it)."""
        if isinstance(event, Aggregate.Created):
            return None
        wanted = event.originator_version - 1
        cached = self._cache.get(event.originator_id)
        if cached is not None and cached.version == wanted:
            self._cache.move_to_end(event.originator_id)
            return cached
        # A miss, or a batch retried after the cache had rolled past it: read the store.
        loaded: Activity = self._app.repository.get(event.originator_id, version=wanted)
        return loaded

    def advance(self, event: Aggregate.Event, before: Activity | None) -> None:
        """Remember the activity as `event` left it (mutates `before` in place)."""
        after = event.mutate(before)
        if not isinstance(after, Activity):
            raise TypeError(f"{type(event).__qualname__} did not produce an Activity")
        self._cache[event.originator_id] = after
        self._cache.move_to_end(event.originator_id)
        while len(self._cache) > self._maxsize:
            self._cache.popitem(last=False)


# -- the relay -------------------------------------------------------------------------------


class ActivityRelay(Relay):
    """Publishes the activity events of `app`'s log on `topic`, at least once, in log order."""

    def __init__(
        self,
        app: ActivityApplication,
        publisher: Publisher,
        tracking: SqlView,
        *,
        topic: str = ACTIVITY_EVENTS,
        batch_size: int = 500,
        cache_size: int = 10_000,
        parking: ParkingLot | None = None,
    ) -> None:
        super().__init__(
            app,
            publisher,
            tracking,
            topic=topic,
            topics=RELAYED_TOPICS,
            batch_size=batch_size,
            parking=parking,
        )
        self._states = ActivityStates(app, cache_size)

    def messages(self, batch: Batch) -> list[WireMessage]:
        return [to_wire(self._message(event), topic=self.topic) for _, event in batch]

    def _message(self, event: Aggregate.Event) -> ActivityEvent:
        before = self._states.before(event)
        try:
            # Map first: advancing mutates `before`, which may be the cached object.
            message = to_message(event, before)
        except ValidationError as error:
            # Parked (with the later events of this activity behind it), never skipped: a
            # skipped change would leave every consumer's copy wrong.
            raise UnpublishableEvent(event, error) from None
        self._states.advance(event, before)
        return message


class UnpublishableEvent(Exception):
    """A stored event the contract refuses (e.g. an id longer than it allows).

    The relay parks it, and the activity's later events behind it, until the contract or the
    data is fixed and an operator asks for a retry (`/ops/parked`). The message
    names the event and the fields, never their values (no personal data in logs).
    """

    def __init__(self, event: Aggregate.Event, error: ValidationError) -> None:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        )
        super().__init__(
            f"{type(event).__qualname__} v{event.originator_version} of activity "
            f"{event.originator_id} does not fit the contract: {fields}"
        )


# -- R8 gaps: the customer file's openings and closings, on a topic of their own -------------

GAP_EVENTS: Final[tuple[type[Aggregate.Event], ...]] = (
    CustomerFile.GapOpened,
    CustomerFile.GapClosed,
)
GAP_RELAY_TRACKING: Final = "activity_gap_relay"


def gap_tracking(env: Mapping[str, str]) -> SqlView:
    """How far the gap relay has published (beside the event store, like `relay_tracking`)."""
    return SqlView(env, name=GAP_RELAY_TRACKING)


def gap_message(event: Aggregate.Event) -> FutureActivityGap:
    """The contract message of an R8 gap opening or closing; `version` is the file's."""
    common: dict[str, Any] = {
        "version": event.originator_version,
        "occurred_at": event.timestamp,
        "actor": _field(event, "actor"),
        "customer_id": _field(event, "customer_id"),
        "since": _field(event, "since"),
        "activity_id": _field(event, "activity_id"),
    }
    if isinstance(event, CustomerFile.GapOpened):
        return FutureActivityGapOpened(
            **common,
            why=GapOpenedBecause(event.why),
            segment=event.segment,
            owner=event.owner,
        )
    if isinstance(event, CustomerFile.GapClosed):
        return FutureActivityGapClosed(**common, why=GapClosedBecause(event.why))
    raise TypeError(f"{type(event).__qualname__} is not an R8 gap event")


class GapRelay(Relay):
    """Publishes each R8 gap opening and closing on `topic`, keyed by customer, in order."""

    def __init__(
        self,
        app: ActivityApplication,
        publisher: Publisher,
        tracking: SqlView,
        *,
        topic: str = R8_GAPS,
        batch_size: int = 500,
        parking: ParkingLot | None = None,
    ) -> None:
        topics = tuple(get_topic(cls) for cls in GAP_EVENTS)
        super().__init__(
            app,
            publisher,
            tracking,
            topic=topic,
            topics=topics,
            batch_size=batch_size,
            parking=parking,
        )

    def messages(self, batch: Batch) -> list[WireMessage]:
        wired = []
        for _, event in batch:
            try:
                message = gap_message(event)
            except ValidationError as error:
                raise UnpublishableEvent(event, error) from None
            wired.append(
                encode(
                    message,
                    source=SOURCE_ACTIVITY,
                    event_id=ce_id(event.originator_id, event.originator_version),
                    topic=self.topic,
                )
            )
        return wired
