"""Helpers for the calendar-sync tests: contract events of an activity, and a running service."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from calendar_sync.calendar import Calendar
from calendar_sync.lanes import Pace
from calendar_sync.service import INFRASTRUCTURE_ERRORS, CalendarSyncService, Topics
from calendar_sync.settings import CalendarSyncSettings, GraphSettings
from calendar_sync.state import SyncRecord
from crm_contracts.activity import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityEvent,
    ActivityMoved,
    ActivityPlanned,
    ActivityReassigned,
    ActivityRetyped,
)
from crm_contracts.base import Message
from crm_contracts.cloudevents import decode, encode
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import ActivityType, Channel, MoveReason, Segment
from crm_contracts.topics import SOURCE_ACTIVITY, SOURCE_SEGMENTATION
from crm_contracts.wire import WireMessage
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging import Delivery, RetryPolicy
from crm_platform.messaging.transport import Transport
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor

from tests.fakes import GraphFake
from tests.support.polling import wait_until

CPH = ZoneInfo("Europe/Copenhagen")
ANNA = "anna@example.dk"
BO = "bo@example.dk"
FAST_RETRIES = RetryPolicy(
    max_attempts=3, base_delay=0.01, max_delay=0.05, infrastructure=INFRASTRUCTURE_ERRORS
)


@dataclass
class Activity:
    """One activity's contract events, version by version, as the activity service emits them."""

    owner: str = ANNA
    customer_id: str = "cust-1"
    type: ActivityType = ActivityType.STATUS_MEETING
    channel: Channel = Channel.PHYSICAL
    subject: str = "Annonceplan forår"
    starts_at: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 10, 0, tzinfo=CPH))
    minutes: int = 60
    agenda: str | None = "Dagsorden:\nKampagner og budget"
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    version: int = 0

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.minutes)

    def _common(self) -> dict[str, Any]:
        self.version += 1
        return {
            "activity_id": self.id,
            "customer_id": self.customer_id,
            "version": self.version,
            "actor": self.owner,
            "occurred_at": datetime.now(UTC),
        }

    def planned(self) -> ActivityPlanned:
        return ActivityPlanned(
            **self._common(),
            owner=self.owner,
            type=self.type,
            channel=self.channel,
            subject=self.subject,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            agenda=self.agenda,
        )

    def moved(self, to: datetime, reason: MoveReason = MoveReason.NO_ANSWER) -> ActivityMoved:
        before, self.starts_at = (self.starts_at, self.ends_at), to
        return ActivityMoved(
            **self._common(),
            owner=self.owner,
            type=self.type,
            channel=self.channel,
            subject=self.subject,
            from_starts_at=before[0],
            from_ends_at=before[1],
            to_starts_at=self.starts_at,
            to_ends_at=self.ends_at,
            reason=reason,
        )

    def retyped(self, to: ActivityType, channel: Channel | None = None) -> ActivityRetyped:
        before = (self.type, self.channel)
        self.type, self.channel = to, channel or self.channel
        return ActivityRetyped(
            **self._common(),
            owner=self.owner,
            subject=self.subject,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            from_type=before[0],
            to_type=self.type,
            from_channel=before[1],
            to_channel=self.channel,
        )

    def reassigned(self, to: str) -> ActivityReassigned:
        before, self.owner = self.owner, to
        return ActivityReassigned(
            **self._common(),
            from_owner=before,
            to_owner=to,
            type=self.type,
            channel=self.channel,
            subject=self.subject,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
        )

    def completed(self) -> ActivityCompleted:
        return ActivityCompleted(
            **self._common(),
            owner=self.owner,
            type=self.type,
            channel=self.channel,
            note="Kunden vil øge frekvensen",
            next_step="Send tilbud",
            completed_at=self.ends_at.astimezone(UTC),
        )

    def cancelled(self) -> ActivityCancelled:
        return ActivityCancelled(**self._common(), owner=self.owner, reason="Kunden aflyste")


def customer(customer_id: str, name: str, version: int = 1) -> CustomerSnapshot:
    return CustomerSnapshot(
        customer_id=customer_id,
        name=name,
        segment=Segment.B,
        prioritized=True,
        version=version,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        actor="segmentation",
    )


def graph_settings(fake: GraphFake, **overrides: Any) -> GraphSettings:
    """Settings for the fake; waits Graph prescribes run on the fake's clock (see `pace`),
    and an uncertain create looks again after one (fake) second unless told otherwise."""
    return GraphSettings(
        tenant_id=fake.tenant,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        base_url=fake.graph_url,
        token_url=fake.token_url,
        **({"settle_seconds": 1.0} | overrides),
    )


def unique_topics(new_topic: Callable[..., str], partitions: int = 3) -> Topics:
    return Topics(
        activities=new_topic("activities", partitions=partitions),
        customers=new_topic("customers", partitions=2),
        status=new_topic("sync", partitions=2),
        group=f"calendar-sync-{uuid.uuid4().hex[:8]}",
    )


@dataclass
class Harness:
    """A calendar-sync service on a real transport, driven by the messages a test sends."""

    service: CalendarSyncService
    transport: Transport
    supervisor: Supervisor | None = None

    @classmethod
    def build(
        cls,
        transport: Transport,
        topics: Topics,
        store: StoreLocation,
        tmp_path: Path,
        *,
        fake: GraphFake | None = None,
        calendar: Calendar | None = None,
        options: CalendarSyncSettings | None = None,
        policy: RetryPolicy = FAST_RETRIES,
        graph: GraphSettings | None = None,
        pace: Pace | None = None,
    ) -> Harness:
        """The service; with a fake, its lanes wait by the fake's clock (`pace`)."""
        if graph is None and fake is not None:
            graph = graph_settings(fake)
        service = CalendarSyncService.build(
            RuntimeSettings(postgres_dsn=None, kafka_bootstrap=None, data_dir=tmp_path),
            transport,
            options or CalendarSyncSettings(),
            graph=graph,
            calendar=calendar,
            topics=topics,
            policy=policy,
            store=store,
            pace=pace or (fake.clock if fake is not None else None),
        )
        return cls(service, transport)

    @property
    def topics(self) -> Topics:
        return self.service.topics

    def start(self) -> Harness:
        self.supervisor = Supervisor(self.service.workers(["consumer"]))
        self.supervisor.start()
        return self

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop(timeout=30)
            self.supervisor = None

    def close(self) -> None:
        self.stop()
        self.service.close()

    def send(self, *messages: Message) -> None:
        publisher = self.transport.publisher()
        try:
            publisher.publish([self.wire(m) for m in messages])
        finally:
            publisher.close()

    def wire(self, message: Message) -> WireMessage:
        if isinstance(message, ActivityEvent):
            key = f"{message.activity_id}:{message.version}"
            return encode(
                message, source=SOURCE_ACTIVITY, event_id=key, topic=self.topics.activities
            )
        assert isinstance(message, CustomerSnapshot)
        return encode(
            message,
            source=SOURCE_SEGMENTATION,
            event_id=f"{message.customer_id}:{message.version}",
            topic=self.topics.customers,
        )

    def record(self, activity: Activity) -> SyncRecord | None:
        return self.service.state.get(str(activity.id))

    def staged(self, activity: Activity, timeout: float = 30.0) -> SyncRecord:
        """The activity's row once its latest version is in the wanted state (consumed)."""

        def probe() -> SyncRecord | None:
            found = self.record(activity)
            return found if found is not None and found.version >= activity.version else None

        return wait_until(probe, timeout=timeout, message=f"{activity.id} v{activity.version}")

    def applied(self, activity: Activity, timeout: float = 30.0) -> SyncRecord:
        """The activity's row once its latest version is consumed and its lane wrote it."""

        def probe() -> SyncRecord | None:
            found = self.record(activity)
            done = found is not None and found.version >= activity.version
            return found if done and found is not None and found.due_at is None else None

        return wait_until(
            probe, timeout=timeout, message=f"{activity.id} v{activity.version} written"
        )


class Collector:
    """Collects the messages of a topic through a consumer running in a thread."""

    def __init__(self, transport: Transport, topic: str) -> None:
        self.messages: list[WireMessage] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = transport.consumer(
            [topic], f"collector-{uuid.uuid4().hex[:8]}", self._collect, stop=self._stop
        )
        self._thread = threading.Thread(target=self._consumer.run, args=(self._stop,))
        self._thread.start()

    def _collect(self, message: WireMessage, delivery: Delivery) -> None:
        with self._lock:
            self.messages.append(message)

    def decoded(self) -> list[Any]:
        with self._lock:
            return [decode(m).message for m in self.messages]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._consumer.close()


def tagged(fake: GraphFake, mailbox: str) -> list[dict[str, Any]]:
    """The events in a mailbox that carry our CrmActivityId property."""
    return [e for e in fake.events(mailbox) if e.get("singleValueExtendedProperties")]


def activity_ids(events: Iterable[dict[str, Any]]) -> list[str]:
    return [e["singleValueExtendedProperties"][0]["value"] for e in events]


def categories(event: Any) -> list[str]:
    """An icalendar VEVENT's CATEGORIES as plain strings."""
    return [str(c) for c in event["categories"].cats]
