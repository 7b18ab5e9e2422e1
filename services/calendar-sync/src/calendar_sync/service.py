"""Wiring calendar-sync from settings: state, calendar adapter, consumers, relay, API.

One place builds everything, whichever way the service runs: both roles in one process
(embedded), or one role per process in production (`api`, `consumer`). The `consumer` role
runs the activity consumer(s), the customer-name consumer and the status relay.

Decisions (the reasons are in the modules named):
* cancellation removes the entry by default; `CALENDAR_SYNC_CANCEL_MODE=mark` keeps it as
  "Aflyst: …", category Aflyst, free (domain.py);
* an unknown customer name shows as the customer id and is fixed when the snapshot
  arrives (consumers.py);
* the feed omits cancelled entries in remove mode and marks them STATUS:CANCELLED in mark
  mode (ics.py); a wrong feed token is 404, like a feed that does not exist (feed_api.py);
* consumers only write the wanted state; the mailbox lanes write the calendar, one holder
  per mailbox cluster-wide, pausing a mailbox (never a consumer) for throttling, its budget
  or while it is unavailable (lanes.py);
* the calendar is called before the state commits; every call is idempotent (projector.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import httpx
import psycopg
from crm_contracts.topics import ACTIVITY_EVENTS, CALENDAR_SYNC, CUSTOMERS
from crm_platform.actors import system_clock
from crm_platform.auth import Authenticator
from crm_platform.eventstore import StoreLocation
from crm_platform.follower import Waker
from crm_platform.messaging import RetryPolicy
from crm_platform.messaging.port import Handler
from crm_platform.messaging.transport import KafkaTransport, Transport
from crm_platform.parked_api import parked_router
from crm_platform.parking import MessageRetries, ParkedGauge, ParkingLot, message_parker
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Worker
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI

from calendar_sync.api import SyncApi, create_app
from calendar_sync.calendar import Calendar, GraphCalendarAdapter
from calendar_sync.consumers import ActivityProjection, CustomerNames
from calendar_sync.feed import FeedCalendar, FeedStore
from calendar_sync.feed_api import feed_router
from calendar_sync.graph import GraphCalendar, GraphUnreachable
from calendar_sync.graph import RetryPolicy as GraphRetryPolicy
from calendar_sync.graph_auth import (
    ClientCredentialsTokenProvider,
    MsalTokenProvider,
    TokenError,
    TokenProvider,
)
from calendar_sync.lanes import Bell, Lanes, LaneSettings, Pace, SystemPace
from calendar_sync.metrics import SyncMetrics, UnavailableMailboxes
from calendar_sync.projector import Projector
from calendar_sync.reconcile import Reconciler
from calendar_sync.relay import StatusRelay
from calendar_sync.settings import CalendarSyncSettings, GraphSettings
from calendar_sync.state import SyncState

log = logging.getLogger(__name__)

ROLES = ("api", "consumer")
STORE_NAME = "calendar_sync"
# Waited out without bound: the message is fine, the world around it is not (a database
# that is down, no token from the identity platform, Graph not answering at all), and
# dead-lettering every message meanwhile would lose them.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    TokenError,
    GraphUnreachable,
)


@dataclass(frozen=True)
class Topics:
    """Topic and consumer-group names (tests use unique ones)."""

    activities: str = ACTIVITY_EVENTS
    customers: str = CUSTOMERS
    status: str = CALENDAR_SYNC
    group: str = "calendar-sync"

    @classmethod
    def of(cls, settings: RuntimeSettings) -> Topics:
        """This installation's names (see CRM_TOPIC_PREFIX and CRM_SCHEMA_PREFIX)."""
        return cls(
            activities=settings.topic(ACTIVITY_EVENTS),
            customers=settings.topic(CUSTOMERS),
            status=settings.topic(CALENDAR_SYNC),
            group=settings.consumer_group(cls.group),
        )


def graph_calendar(
    graph: GraphSettings,
    metrics: SyncMetrics,
    options: CalendarSyncSettings | None = None,
    pace: Pace | None = None,
) -> GraphCalendarAdapter:
    """The Graph adapter; builds nothing that talks to the network yet."""
    assert graph.client_id
    assert graph.tenant_id
    assert graph.client_secret
    options = options or CalendarSyncSettings()
    pace = pace or SystemPace()
    secret = graph.client_secret.get_secret_value()
    tokens: TokenProvider
    if graph.token_url:
        tokens = ClientCredentialsTokenProvider(graph.token_url, graph.client_id, secret)
    else:
        tokens = MsalTokenProvider(
            graph.tenant_id, graph.client_id, secret, authority_host=graph.authority_host
        )
    http = httpx.Client(
        timeout=graph.timeout_seconds, event_hooks={"response": [metrics.observe_graph]}
    )
    client = GraphCalendar(
        tokens,
        base_url=graph.base_url,
        http=http,
        retry=GraphRetryPolicy(
            max_attempts=graph.max_attempts,
            inline_retry_after=graph.inline_retry_after_seconds,
            retry_after_cap=options.retry_after_cap_seconds,
        ),
        sleep=pace.sleep,
        settle_seconds=graph.settle_seconds,
    )
    return GraphCalendarAdapter(client)


class ClockPace:
    """A pace over a given clock, waiting in wall seconds (a clock a test moves by hand)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def real_seconds(self, seconds: float) -> float:
        return seconds


@dataclass
class CalendarSyncService:
    settings: RuntimeSettings
    options: CalendarSyncSettings
    store: StoreLocation
    transport: Transport
    state: SyncState
    feed: FeedStore | None
    calendar: Calendar
    projector: Projector
    lanes: Lanes
    metrics: SyncMetrics
    topics: Topics
    policy: RetryPolicy
    clock: Callable[[], datetime]
    waker: Waker
    parking: ParkingLot

    @classmethod
    def build(
        cls,
        settings: RuntimeSettings,
        transport: Transport,
        options: CalendarSyncSettings | None = None,
        *,
        graph: GraphSettings | None = None,
        calendar: Calendar | None = None,
        topics: Topics | None = None,
        policy: RetryPolicy | None = None,
        store: StoreLocation | None = None,
        clock: Callable[[], datetime] = system_clock,
        pace: Pace | None = None,
    ) -> CalendarSyncService:
        """`calendar` wins; else Graph when `graph` is configured; else the iCalendar feed.

        `store` defaults to the service's own SQLite file or PostgreSQL schema. `pace`: the
        clock the lanes follow and wait by (tests run it faster); default: `clock`'s.
        """
        options = options or CalendarSyncSettings()
        if pace is None:
            pace = SystemPace() if clock is system_clock else ClockPace(clock)
        clock = pace.now
        store = store or settings.store(STORE_NAME)
        env = store.env()
        waker = Waker()
        bell = Bell()
        metrics = SyncMetrics()
        feed: FeedStore | None = None

        with store.creating():
            # The status relay hears of every save; the lanes only of work (see lanes.py).
            state = SyncState(env, on_saved=waker.notify, on_due=bell.ring)
            parking = ParkingLot(env, "calendar_sync")
            if calendar is None:
                if graph is not None and graph.configured:
                    calendar = graph_calendar(graph, metrics, options, pace)
                else:
                    feed = FeedStore(env, clock=clock)
                    calendar = FeedCalendar(feed)
            elif isinstance(calendar, FeedCalendar):
                feed = calendar.store
        ParkedGauge(parking).register(metrics.registry)
        UnavailableMailboxes(state.unavailable_counts).register(metrics.registry)
        projector = Projector(state, calendar, options.cancel_mode, clock)
        lanes = Lanes(
            projector,
            metrics,
            pace,
            LaneSettings(
                lease_seconds=options.lease_seconds,
                retry_after_cap=options.retry_after_cap_seconds,
                unavailable_first_check=options.unavailable_first_check_seconds,
                unavailable_max_check=options.unavailable_max_check_seconds,
                budget=options.request_budget,
                budget_window=options.budget_window_seconds,
                idle_poll=options.lane_idle_poll_seconds,
                linger=options.lane_linger_seconds,
            ),
            bell=bell,
            parking=parking,
        )
        if isinstance(calendar, GraphCalendarAdapter) and calendar.client.meter is None:
            calendar.client.meter = lanes.budget  # every request counts against its mailbox
        policy = policy or RetryPolicy(
            max_attempts=options.max_attempts, infrastructure=INFRASTRUCTURE_ERRORS
        )
        return cls(
            settings,
            options,
            store,
            transport,
            state,
            feed,
            calendar,
            projector,
            lanes,
            metrics,
            topics or Topics.of(settings),
            policy,
            clock,
            waker,
            parking,
        )

    # --- API ------------------------------------------------------------------------------
    def checks(self) -> dict[str, Callable[[], object]]:
        return {
            "state": lambda: self.state.position(self.topics.activities),
            "transport": self.transport.ping,
        }

    def reconciler(self) -> Reconciler:
        return Reconciler(
            self.lanes,
            self.metrics,
            self.clock,
            window_back=timedelta(days=self.options.reconcile_days_back),
            window_ahead=timedelta(days=self.options.reconcile_days_ahead),
        )

    def api(self, auth: Authenticator, *, root_path: str = "") -> FastAPI:
        routers = []
        if self.feed is not None:
            routers.append(
                feed_router(self.feed, auth, self.options.feed_base_url, self.clock, self.parking)
            )
        routers.append(parked_router(self.parking, auth))
        api = SyncApi(
            state=self.state,
            reconciler=self.reconciler(),
            auth=auth,
            metrics=self.metrics,
            checks=self.checks(),
            extra_routers=routers,
            max_body_bytes=self.settings.max_body_bytes,
        )
        return create_app(api, root_path=root_path)

    # --- workers --------------------------------------------------------------------------
    def activity_handler(self) -> ActivityProjection:
        return ActivityProjection(self.state, self.metrics, self.clock)

    def workers(self, roles: Iterable[str]) -> list[Worker]:
        if "consumer" not in set(roles):
            return []
        # The in-process broker has one member per group; Kafka spreads partitions.
        members = self.options.consumers if isinstance(self.transport, KafkaTransport) else 1
        workers = [
            Worker(f"calendar-sync-activities-{n}", self.run_activities) for n in range(members)
        ]
        workers.append(Worker("calendar-sync-customers", self.run_customers))
        workers.append(Worker("calendar-sync-status-relay", self.run_relay))
        # SQLite takes one writer at a time: more lanes would only wait for each other's locks.
        lanes = self.options.lane_workers if self.store.is_postgres else 1
        workers += [Worker(f"calendar-sync-lane-{n}", self.lanes.run) for n in range(lanes)]
        if self.store.postgres_dsn is not None:
            dsn = self.store.postgres_dsn
            workers.append(
                Worker("calendar-sync-lanes-listen", lambda stop: self.lanes.listen(dsn, stop))
            )
        workers.append(Worker("calendar-sync-lanes-parked", self.lanes.run_parked))
        for worker, handler in self._consumers().values():
            workers.append(
                Worker(f"{worker}-parked", MessageRetries(self.parking, worker, handler).run)
            )
        return workers

    def _consumers(self) -> dict[str, tuple[str, Handler]]:
        """Each consumer's parking name and handler (retries of parked messages use both)."""
        return {
            "activities": (
                f"consumer:{self.topics.group}.activities",
                self.activity_handler().handle,
            ),
            "customers": (
                f"consumer:{self.topics.group}.customers",
                CustomerNames(self.state, self.clock).handle,
            ),
        }

    def _policy(self, consumer: str) -> RetryPolicy:
        worker, _ = self._consumers()[consumer]
        return replace(self.policy, park=message_parker(self.parking, worker))

    def run_activities(self, stop: threading.Event) -> None:
        consumer = self.transport.consumer(
            [self.topics.activities],
            f"{self.topics.group}.activities",
            self.activity_handler().handle,
            policy=self._policy("activities"),
            stop=stop,
        )
        try:
            consumer.run(stop)
        finally:
            consumer.close()

    def run_customers(self, stop: threading.Event) -> None:
        # Names that came while no lane could write them (a crash before the mark) first.
        self.state.mark_stale_names(self.clock())
        consumer = self.transport.consumer(
            [self.topics.customers],
            f"{self.topics.group}.customers",
            CustomerNames(self.state, self.clock).handle,
            policy=self._policy("customers"),
            stop=stop,
        )
        try:
            consumer.run(stop)
        finally:
            consumer.close()

    def run_relay(self, stop: threading.Event) -> None:
        publisher = self.transport.publisher()
        try:
            StatusRelay(
                self.state,
                publisher,
                self.metrics,
                topic=self.topics.status,
                parking=self.parking,
            ).run(stop, self.waker)
        finally:
            publisher.close()

    def close(self) -> None:
        if isinstance(self.calendar, GraphCalendarAdapter):
            self.calendar.client.close()
        if self.feed is not None:
            self.feed.close()
        self.state.close()
        self.parking.close()
