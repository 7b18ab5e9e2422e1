"""The relay: customer events of the notification log → snapshots on `crm.customers.v1`.

The topic is compacted and keyed by customer id, and each value is the customer's whole state
(`snapshot`), so a consumer reading from the start rebuilds its directory. After every
event in `CUSTOMER_EVENTS` the relay publishes the snapshot at that event's version, with
`ce_id = "{customer_id}:{version}"`, equal on every attempt so consumers recognise a repeat.
The policy book, recomputations and idempotency records stay inside the service (their
topics are not followed at all).

Publish, wait for the acks, then track the batch's last position (`LogFollower` keeps that
order): a crash in between publishes the batch again (duplicates, never gaps). Snapshots are
rolled forward event by event in a small LRU cache; on a miss (a restart mid-stream, an
eviction) the customer is loaded at the event's version from the store.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Final
from uuid import UUID

from crm_contracts.cloudevents import encode
from crm_contracts.customer import AnnualAgreement, CustomerSnapshot, ValueProgramme
from crm_contracts.enums import Segment
from crm_contracts.topics import CUSTOMERS, SOURCE_SEGMENTATION
from crm_contracts.wire import WireMessage
from crm_platform.follower import Batch
from crm_platform.messaging import Publisher
from crm_platform.parking import ParkingLot
from crm_platform.relay import Relay
from crm_platform.sqlview import SqlView
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic
from pydantic import ValidationError

from segmentation.application import SegmentationApplication
from segmentation.domain import CUSTOMER_EVENTS, Customer

log = logging.getLogger(__name__)

RELAYED_TOPICS: Final[tuple[str, ...]] = tuple(get_topic(cls) for cls in CUSTOMER_EVENTS)
RELAY_TRACKING: Final = "segmentation_relay"


def snapshot(customer: Customer) -> CustomerSnapshot:
    """The customer's state as published (keyed by customer id) on `crm.customers.v1`."""
    agreement, programme = customer.agreement, customer.value_programme
    return CustomerSnapshot(
        version=customer.version,
        actor=customer.updated_by,
        customer_id=customer.customer_id,
        name=customer.name,
        cvr=customer.cvr,
        owner=customer.owner,
        potential_dkk=customer.potential,
        segment=Segment(customer.segment),
        prioritized=customer.prioritized,
        annual_agreement=(
            AnnualAgreement(starts_on=agreement.starts_on, ends_on=agreement.ends_on)
            if agreement is not None
            else None
        ),
        value_programme=(
            ValueProgramme(starts_on=programme.starts_on, ends_on=programme.ends_on)
            if programme is not None
            else None
        ),
        updated_at=customer.modified_on,
    )


def relay_tracking(env: Mapping[str, str]) -> SqlView:
    """Where the relay records how far it has published: tracking only, no tables, beside
    the event store, so a restored backup of the store brings the position with it."""
    return SqlView(env, name=RELAY_TRACKING)


def ce_id(customer_id: str, version: int) -> str:
    """The deterministic CloudEvents id of one snapshot: equal on every publish of it."""
    return f"{customer_id}:{version}"


def to_wire(message: CustomerSnapshot, *, topic: str | None = None) -> WireMessage:
    """The CloudEvent for a snapshot, keyed by customer id, with its deterministic `ce_id`."""
    return encode(
        message,
        source=SOURCE_SEGMENTATION,
        event_id=ce_id(message.customer_id, message.version),
        topic=topic,
    )


class CustomerStates:
    """The customers the relay has seen lately, each at the version of its last event."""

    def __init__(self, app: SegmentationApplication, maxsize: int = 10_000) -> None:
        self._app = app
        self._maxsize = maxsize
        self._cache: OrderedDict[UUID, Customer] = OrderedDict()

    def after(self, event: Aggregate.Event) -> Customer:
        """The customer as `event` left it."""
        cached = self._cache.get(event.originator_id)
        before: Customer | None = None
        if isinstance(event, Aggregate.Created):
            before = None
        elif cached is not None and cached.version == event.originator_version - 1:
            before = cached
        else:
            # A miss, or a batch retried after the cache had rolled past it: read the store.
            loaded: Customer = self._app.repository.get(
                event.originator_id, version=event.originator_version
            )
            self._remember(loaded)
            return loaded
        after = event.mutate(before)
        if not isinstance(after, Customer):
            raise TypeError(f"{type(event).__qualname__} did not produce a Customer")
        self._remember(after)
        return after

    def forget(self, customer_id: UUID) -> None:
        self._cache.pop(customer_id, None)

    def _remember(self, customer: Customer) -> None:
        self._cache[customer.id] = customer
        self._cache.move_to_end(customer.id)
        while len(self._cache) > self._maxsize:
            self._cache.popitem(last=False)


class CustomerRelay(Relay):
    """Publishes a snapshot per customer event of `app`'s log on `topic`, at least once."""

    def __init__(
        self,
        app: SegmentationApplication,
        publisher: Publisher,
        tracking: SqlView,
        *,
        topic: str = CUSTOMERS,
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
        self._states = CustomerStates(app, cache_size)

    def messages(self, batch: Batch) -> list[WireMessage]:
        try:
            return [to_wire(self._snapshot(event), topic=self.topic) for _, event in batch]
        except Exception:
            # The cache may hold states rolled forward past a batch that will come again.
            for _, event in batch:
                self._states.forget(event.originator_id)
            raise

    def _snapshot(self, event: Aggregate.Event) -> CustomerSnapshot:
        customer = self._states.after(event)
        try:
            return snapshot(customer)
        except ValidationError as error:
            # Halting beats skipping: a skipped snapshot would leave every consumer's copy wrong.
            raise UnpublishableSnapshot(event, error) from None


class UnpublishableSnapshot(Exception):
    """A customer state the contract refuses; names the fields, never their values."""

    def __init__(self, event: Aggregate.Event, error: ValidationError) -> None:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        )
        super().__init__(
            f"{type(event).__qualname__} v{event.originator_version} of customer "
            f"{event.originator_id} does not fit the contract: {fields}"
        )
