"""Helpers of the attainment tests (no tests here): contract events as the activity service
publishes them, and a feeder that hands them to the consumer with growing offsets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid5

import pytest
from crm_contracts.activity import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityEvent,
    ActivityMoved,
    ActivityPlanned,
    ActivityRegistered,
    DiscoveryProfile,
)
from crm_contracts.cloudevents import encode
from crm_contracts.enums import ActivityType, Channel, MoveReason
from crm_contracts.topics import ACTIVITY_EVENTS, SOURCE_ACTIVITY
from crm_contracts.wire import WireMessage
from crm_platform.messaging import Delivery
from segmentation.application import SegmentationApplication
from segmentation.attainment import ActivityEventsConsumer

from tests.support.clock import ManualClock
from tests.support.people import ANNA, MIA

NS = UUID("6f1c3d2e-0000-4000-8000-000000000000")
HOUR = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def aid(name: str) -> UUID:
    return uuid5(NS, name)


def planned(
    name: str, customer: str, kind: ActivityType, starts: datetime, owner: str = ANNA.user_id
) -> ActivityPlanned:
    return ActivityPlanned(
        activity_id=aid(name),
        customer_id=customer,
        version=1,
        actor=owner,
        occurred_at=utc(2026, 1, 2, 8),
        owner=owner,
        type=kind,
        channel=Channel.PHYSICAL,
        subject="Møde",
        starts_at=starts,
        ends_at=starts + HOUR,
    )


def moved(plan: ActivityPlanned, to: datetime, version: int = 2) -> ActivityMoved:
    return ActivityMoved(
        activity_id=plan.activity_id,
        customer_id=plan.customer_id,
        version=version,
        actor=plan.owner,
        occurred_at=utc(2026, 1, 3, 8),
        owner=plan.owner,
        type=plan.type,
        channel=plan.channel,
        subject=plan.subject,
        from_starts_at=plan.starts_at,
        from_ends_at=plan.ends_at,
        to_starts_at=to,
        to_ends_at=to + HOUR,
        reason=MoveReason.CUSTOMER_REQUEST,
    )


def profile(potential: str | None) -> DiscoveryProfile:
    return DiscoveryProfile(
        business="Bageri med tre butikker",
        situation="",
        challenges="",
        goals_and_plans="",
        advertising_needs="Lokalavis og online",
        potential_dkk=Decimal(potential) if potential is not None else None,
        competitors="",
        strategy="",
        unique_traits="",
    )


def completed(
    plan: ActivityPlanned, at: datetime, version: int = 2, potential: str | None = None
) -> ActivityCompleted:
    return ActivityCompleted(
        activity_id=plan.activity_id,
        customer_id=plan.customer_id,
        version=version,
        actor=plan.owner,
        occurred_at=at,
        owner=plan.owner,
        type=plan.type,
        channel=plan.channel,
        note="Holdt",
        next_step="Følg op",
        completed_at=at,
        discovery_profile=profile(potential) if potential is not None else None,
    )


def cancelled(plan: ActivityPlanned, version: int = 2) -> ActivityCancelled:
    return ActivityCancelled(
        activity_id=plan.activity_id,
        customer_id=plan.customer_id,
        version=version,
        actor=plan.owner,
        occurred_at=utc(2026, 1, 4, 8),
        owner=plan.owner,
        reason="Kunden aflyste",
    )


def registered(
    name: str,
    customer: str,
    kind: ActivityType,
    held: datetime,
    potential: str | None = None,
    owner: str = ANNA.user_id,
) -> ActivityRegistered:
    return ActivityRegistered(
        activity_id=aid(name),
        customer_id=customer,
        version=1,
        actor=owner,
        occurred_at=held,
        owner=owner,
        type=kind,
        channel=Channel.PHYSICAL,
        held_at=held,
        note="Registreret bagefter",
        discovery_profile=profile(potential) if potential is not None else None,
    )


def wire(event: ActivityEvent, topic: str = ACTIVITY_EVENTS) -> WireMessage:
    return encode(
        event, source=SOURCE_ACTIVITY, event_id=f"{event.activity_id}:{event.version}", topic=topic
    )


class Feed:
    """Hands events to the consumer as the transport would: one partition, growing offsets."""

    def __init__(self, view: ActivityEventsConsumer) -> None:
        self.view = view
        self.offset = -1

    def __call__(self, *events: ActivityEvent) -> list[Delivery]:
        deliveries = []
        for event in events:
            self.offset += 1
            delivery = Delivery(ACTIVITY_EVENTS, 0, self.offset)
            self.view.handle(wire(event), delivery)
            deliveries.append(delivery)
        return deliveries


def register(
    app: SegmentationApplication,
    clock: ManualClock,
    customer_id: str,
    *,
    potential: str | None,
    on: datetime,
    owner: str = ANNA.user_id,
) -> None:
    """Register a customer (and assess its potential) as of `on`, then put the clock back."""
    back = clock.now
    clock.now = on
    app.register_customer(MIA, name=f"Kunde {customer_id}", customer_id=customer_id, owner=owner)
    if potential is not None:
        app.assess_potential(MIA, customer_id, amount=potential, assessed_at=on)
    clock.now = back


@pytest.fixture
def view(env: dict[str, str], app: SegmentationApplication) -> Iterator[ActivityEventsConsumer]:
    consumer = ActivityEventsConsumer(env, app)
    yield consumer
    consumer.close()


@pytest.fixture
def feed(view: ActivityEventsConsumer) -> Feed:
    return Feed(view)
