"""Meeting attainment: the activity consumer, its table, and per-customer and team reports.

`ActivityEventsConsumer.handle` is the transport's handler for `crm.activity.events.v1`. It
keeps one row per activity (the fat events carry everything needed, so no lookups), guarded
by the activity's `version` and written with the partition's tracking position in one
transaction: a redelivery or an older event never changes a row twice.

Decisions (documented for the UI and the tests):
- Year attribution: a completed meeting counts in the Europe/Copenhagen calendar year of the
  moment it was held (`completed_at`, or `held_at` for a registered one), not of its plan.
- Scheduled: still `planned`, starting after "now" and before the year ends (Copenhagen).
- The team report groups customers by the CUSTOMER's owner and current segment (from the
  segmentation registry), not by who held the meetings: targets belong to the customer's
  account team, and a colleague standing in still helps that customer's attainment.
- A customer is "on target" when no meeting type is `under` after pro-rating (`over` has
  reached the minimum too). A customer unsegmented all year (`no_target`) is not on target:
  it still needs its discovery meeting.
- A completed or registered discovery meeting whose profile carries `potential_dkk`
  assesses the customer's potential (source `discovery_meeting`) as a service actor. That
  happens before the tracking commits, so a crash in between repeats it, which the
  application records as nothing new (same amount, time and source).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final
from uuid import UUID

from crm_contracts.activity import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityEvent,
    ActivityMoved,
    ActivityPlanned,
    ActivityReassigned,
    ActivityRegistered,
    ActivityRetyped,
)
from crm_contracts.cloudevents import decode
from crm_contracts.enums import ActivityType, Segment
from crm_contracts.errors import InvalidMessage
from crm_contracts.wire import WireMessage
from crm_platform.auth.principal import Principal, Role
from crm_platform.errors import DomainError, NotFound
from crm_platform.messaging import Delivery
from crm_platform.sqlview import SqlView, iso

from segmentation.application import SegmentationApplication
from segmentation.domain import Customer, segment_history
from segmentation.registry import RegistryRow
from segmentation.rules import COPENHAGEN, PotentialSource, local_date
from segmentation.targets import Attainment, SegmentHistory, Status, attainment

log = logging.getLogger(__name__)

SERVICE_ACTOR: Final = Principal(
    user_id="segmentation",
    display_name="Segmentation (discovery meetings)",
    roles=frozenset({Role.SERVICE}),
)
PAGE: Final = 1000  # registry rows per read while building the team report

PLANNED, COMPLETED, CANCELLED = "planned", "completed", "cancelled"

TypeCounts = dict[ActivityType | str, int]  # what targets.attainment takes
Counts = dict[str, TypeCounts]  # customer id -> type -> count

_UPSERT: Final = (
    "INSERT INTO {t}activities (activity_id, customer_id, owner, type, status, starts_at,"
    " done_at, done_year, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (activity_id) DO UPDATE SET customer_id = excluded.customer_id,"
    # An event leaves NULL what it does not carry (a completion has no planned time): keep it.
    " owner = COALESCE(excluded.owner, {t}activities.owner),"
    " type = COALESCE(excluded.type, {t}activities.type),"
    " status = excluded.status,"
    " starts_at = COALESCE(excluded.starts_at, {t}activities.starts_at),"
    " done_at = COALESCE(excluded.done_at, {t}activities.done_at),"
    " done_year = COALESCE(excluded.done_year, {t}activities.done_year),"
    " version = excluded.version"
    " WHERE {t}activities.version < excluded.version"
)


@dataclass(frozen=True, slots=True)
class CustomerAttainment:
    """One customer's year: the pure attainment plus what is still planned."""

    customer_id: str
    owner: str | None
    segment: Segment  # today's segment
    as_of: datetime
    attainment: Attainment
    scheduled: Mapping[ActivityType | str, int]

    @property
    def on_target(self) -> bool:
        return is_on_target(self.attainment)


@dataclass(slots=True)
class ReportRow:
    """One consultant's customers in one segment."""

    owner: str | None
    segment: Segment
    customers: int = 0
    on_target: int = 0
    actual: int = 0  # completed meetings of the four types with targets
    recommended_min: Decimal = Decimal("0.0")  # sum of the pro-rated bands
    recommended_max: Decimal = Decimal("0.0")
    expected_by_today: Decimal = Decimal("0.0")
    scheduled: int = 0
    by_type: dict[ActivityType, int] = field(default_factory=dict)  # actual per meeting type

    @property
    def share_on_target(self) -> Decimal:
        if not self.customers:
            return Decimal("0.000")
        share = Decimal(self.on_target) / Decimal(self.customers)
        return share.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)

    def add(self, item: Attainment, scheduled: Mapping[ActivityType | str, int]) -> None:
        self.customers += 1
        self.on_target += is_on_target(item)
        for meeting, line in item.lines.items():
            self.actual += line.actual
            self.recommended_min += line.min
            self.recommended_max += line.max
            self.expected_by_today += line.expected_by_today
            self.scheduled += scheduled.get(meeting, 0)
            self.by_type[meeting] = self.by_type.get(meeting, 0) + line.actual


def is_on_target(item: Attainment) -> bool:
    """No line under, and the customer had a segment (so targets) at some point."""
    statuses = {line.status for line in item.lines.values()}
    return Status.UNDER not in statuses and Status.NO_TARGET not in statuses


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The Copenhagen year as [start, next start) instants."""
    return datetime(year, 1, 1, tzinfo=COPENHAGEN), datetime(year + 1, 1, 1, tzinfo=COPENHAGEN)


def row_of(event: ActivityEvent) -> tuple[Any, ...] | None:
    """The activities row an event leaves behind (None: the event changes nothing counted)."""
    owner: str | None = getattr(event, "owner", None)
    kind: ActivityType | None = None
    status, starts_at, done_at = PLANNED, None, None
    if isinstance(event, ActivityPlanned | ActivityReassigned):
        kind, starts_at = event.type, event.starts_at
        if isinstance(event, ActivityReassigned):
            owner = event.to_owner
    elif isinstance(event, ActivityMoved):
        kind, starts_at = event.type, event.to_starts_at
    elif isinstance(event, ActivityRetyped):
        kind, starts_at = event.to_type, event.starts_at
    elif isinstance(event, ActivityCompleted):
        kind, status, done_at = event.type, COMPLETED, event.completed_at
    elif isinstance(event, ActivityRegistered):
        kind, status, done_at = event.type, COMPLETED, event.held_at
    elif isinstance(event, ActivityCancelled):
        status = CANCELLED
    else:
        return None  # attachments do not change what is counted
    return (
        str(event.activity_id),
        event.customer_id,
        owner,
        kind.value if kind else None,
        status,
        iso(starts_at),
        iso(done_at),
        local_date(done_at).year if done_at else None,
        event.version,
    )


def discovered_potential(event: ActivityEvent) -> tuple[Decimal, datetime] | None:
    """The potential a held discovery meeting assessed, and when it was held."""
    if isinstance(event, ActivityCompleted):
        held = event.completed_at
    elif isinstance(event, ActivityRegistered):
        held = event.held_at
    else:
        return None
    profile = event.discovery_profile
    if event.type is not ActivityType.DISCOVERY_MEETING or profile is None:
        return None
    if profile.potential_dkk is None:
        return None
    return Decimal(profile.potential_dkk), held


class ActivityEventsConsumer(SqlView):
    """The attainment read model over `crm.activity.events.v1`, and the reports on it."""

    name = "segmentation_attainment"
    ddl = (
        "CREATE TABLE IF NOT EXISTS {t}activities ("
        " activity_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, owner TEXT, type TEXT,"
        " status TEXT NOT NULL, starts_at TEXT, done_at TEXT, done_year INTEGER,"
        " version BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS segmentation_attainment_customer"
        " ON {t}activities (customer_id)",
        "CREATE INDEX IF NOT EXISTS segmentation_attainment_year ON {t}activities (done_year)",
        "CREATE INDEX IF NOT EXISTS segmentation_attainment_starts ON {t}activities (starts_at)",
    )

    def __init__(self, env: Mapping[str, str], app: SegmentationApplication) -> None:
        super().__init__(env)
        self.app = app

    # -- consuming ------------------------------------------------------------------------

    def handle(self, message: WireMessage, delivery: Delivery) -> None:
        """The message handler (a message that breaks the contract raises ContractError)."""
        if self.has_seen(delivery.tracking_name, delivery.offset):
            return
        event = decode(message).message
        if not isinstance(event, ActivityEvent):
            raise InvalidMessage(type(event).ce_type, "only activity events belong on this topic")
        self._assess_discovery(event)
        row = row_of(event)
        with self.transaction() as tx:
            if row is not None:
                tx.execute(_UPSERT, row)
            tx.track(delivery.tracking_name, delivery.offset)

    def _assess_discovery(self, event: ActivityEvent) -> None:
        found = discovered_potential(event)
        if found is None:
            return
        amount, held = found
        # The application refuses assessments in the future; a skewed clock must not lose it.
        assessed_at = min(held, self.app.clock())
        try:
            self.app.assess_potential(
                SERVICE_ACTOR,
                event.customer_id,
                amount=amount,
                source=PotentialSource.DISCOVERY_MEETING,
                assessed_at=assessed_at,
                note=f"discovery meeting {event.activity_id}",
            )
        except NotFound:
            # Activities may name a customer segmentation never registered (or not yet):
            # nothing to assess, but the meeting still counts, so this is no poison.
            log.warning(
                "discovery meeting %s for unknown customer %s: potential not assessed",
                event.activity_id,
                event.customer_id,
            )
        except DomainError as error:
            log.warning(
                "discovery meeting %s: potential not assessed: %s", event.activity_id, error.message
            )

    # -- counting -------------------------------------------------------------------------

    def counts(
        self, year: int, now: datetime, customer_id: str | None = None
    ) -> tuple[Counts, Counts]:
        """(actual, scheduled) per customer and type for `year`, for one or every customer."""
        only = " AND customer_id = ?" if customer_id is not None else ""
        extra: tuple[Any, ...] = (customer_id,) if customer_id is not None else ()
        # `only` is one of two constant fragments: nothing from the caller enters the text.
        actual = self.query(
            "SELECT customer_id, type, COUNT(*) AS n FROM {t}activities"  # noqa: S608
            " WHERE status = ? AND done_year = ? AND type IS NOT NULL"
            + only
            + " GROUP BY customer_id, type",
            (COMPLETED, year, *extra),
        )
        start, end = year_bounds(year)
        scheduled = self.query(
            "SELECT customer_id, type, COUNT(*) AS n FROM {t}activities"  # noqa: S608
            " WHERE status = ? AND starts_at > ? AND starts_at >= ? AND starts_at < ?"
            " AND type IS NOT NULL" + only + " GROUP BY customer_id, type",
            (PLANNED, iso(now), iso(start), iso(end), *extra),
        )
        return _by_customer(actual), _by_customer(scheduled)

    def customer_attainment(self, customer_id: str, year: int, now: datetime) -> CustomerAttainment:
        """Raises NotFound for a customer segmentation does not know."""
        view = self.app.customer(customer_id)
        history = self.app.segment_history(customer_id)
        actual, scheduled = self.counts(year, now, customer_id)
        return CustomerAttainment(
            customer_id=customer_id,
            owner=view.customer.owner,
            segment=view.segment,
            as_of=now,
            attainment=attainment(
                year,
                history,
                self.app.current_policy().policy,
                actual.get(customer_id, {}),
                today=local_date(now),
            ),
            scheduled=scheduled.get(customer_id, {}),
        )

    def report(
        self,
        year: int,
        now: datetime,
        *,
        owner: str | None = None,
        segment: Segment | None = None,
    ) -> list[ReportRow]:
        """Per customer owner and current segment; sorted by owner (none last), segment."""
        policy = self.app.current_policy().policy
        actual, scheduled = self.counts(year, now)
        today = local_date(now)
        rows: dict[tuple[str | None, Segment], ReportRow] = {}
        shared: dict[Any, Any] = {}
        for page in self.registry_pages(owner, segment):
            histories = self.histories(page, year)
            for customer in page:
                item = attainment(
                    year,
                    histories[customer.customer_id],
                    policy,
                    actual.get(customer.customer_id, {}),
                    today=today,
                    shared=shared,
                )
                key = (customer.owner, Segment(customer.segment))
                row = rows.setdefault(key, ReportRow(*key))
                row.add(item, scheduled.get(customer.customer_id, {}))
        order = list(Segment)
        return sorted(
            rows.values(),
            key=lambda r: (r.owner is None, r.owner or "", order.index(r.segment)),
        )

    def registry_pages(
        self, owner: str | None, segment: Segment | None
    ) -> Iterator[list[RegistryRow]]:
        """The registry's customers (of `owner`, in `segment`), a page at a time."""
        after = 0
        while page := self.app.customers(segment=segment, owner=owner, after=after, limit=PAGE):
            yield page
            after = page[-1].seq

    def histories(self, page: Sequence[RegistryRow], year: int) -> dict[str, SegmentHistory]:
        """Each customer's segment history as far as `year` needs it. Most customers kept
        their segment since before the year or since they were registered: the registry row
        is then the whole history that matters. The others' events are read for the whole
        page at once (one statement per 500, not one per customer: a year of new customers
        took the report 30-50 s for 20,000)."""
        histories: dict[str, SegmentHistory] = {}
        stream: dict[UUID, str] = {}
        for customer in page:
            # Held since before the year, or since the customer was registered (no change
            # since: a change never takes effect before the one it follows).
            held_from = max(date(year, 1, 1), local_date(customer.created_on))
            if customer.segment_since <= held_from:
                histories[customer.customer_id] = [
                    (customer.segment_since, Segment(customer.segment))
                ]
            else:
                stream[Customer.id_for(customer.customer_id)] = customer.customer_id
        events: dict[str, list[object]] = {}
        for stored in self.app.registry.select_events_for(list(stream)):
            owner_id = stream[UUID(str(stored.originator_id))]
            events.setdefault(owner_id, []).append(self.app.mapper.to_domain_event(stored))
        for customer_id in stream.values():
            histories[customer_id] = segment_history(events.get(customer_id, []))
        return histories


def _by_customer(rows: Sequence[Mapping[str, Any]]) -> Counts:
    counts: Counts = {}
    for row in rows:
        counts.setdefault(row["customer_id"], {})[ActivityType(row["type"])] = int(row["n"])
    return counts


__all__ = [
    "SERVICE_ACTOR",
    "ActivityEventsConsumer",
    "CustomerAttainment",
    "ReportRow",
    "is_on_target",
    "row_of",
    "year_bounds",
]
