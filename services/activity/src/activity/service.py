"""Wiring the activity service from settings: stores, views, application, workers, API.

One place builds everything, whichever way the service runs: every role in one process
(embedded), or one role per process in production (`api`, `relay`, `projector`,
`consumer`). The `consumer` role also runs the customer watch (R8 gaps, a new consultant),
which the customer directory wakes when a customer changes; `relay` publishes activity events
and R8 gaps.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from crm_contracts.topics import ACTIVITY_EVENTS, CUSTOMERS, R8_GAPS
from crm_platform.actors import system_clock
from crm_platform.auth import Authenticator
from crm_platform.eventstore import StoreLocation
from crm_platform.follower import Waker
from crm_platform.messaging import RetryPolicy
from crm_platform.messaging.transport import Transport
from crm_platform.ops import Check
from crm_platform.parked_api import parked_router
from crm_platform.parking import MessageRetries, ParkedGauge, ParkingLot, message_parker
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Worker
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI

from activity.api import ActivityApi, create_app
from activity.application import ActivityApplication
from activity.consumers import CustomerDirectory
from activity.customer_watch import CustomerWatch
from activity.projections import FOLLOWED_TOPICS, ActivityReadModel, follower
from activity.read_api import read_router
from activity.relay import ActivityRelay, GapRelay, gap_tracking, relay_tracking

log = logging.getLogger(__name__)

ROLES = ("api", "relay", "projector", "consumer")
# Named with the directory's view (consumers.py): a new name reads the topic from its start.
CONSUMER_GROUP = "activity.customers"
CONSUMER_WORKER = f"consumer:{CONSUMER_GROUP}"
# A database that is down is waited out; the message is fine and must not be dead-lettered.
INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError)


def caught_up(app: ActivityApplication, read_model: ActivityReadModel) -> Callable[[int], bool]:
    """Whether the read models reflect the activity log up to a position: they have read that
    far, or nothing they follow lies between where they are and there. (Ids commit in order,
    so nothing below a position a client was given is still to come.)"""

    def check(position: int) -> bool:
        seen = read_model.position(app.name) or 0
        if seen >= position:
            return True
        return not app.recorder.select_notifications(
            start=seen, stop=position, limit=1, topics=FOLLOWED_TOPICS, inclusive_of_start=False
        )

    return check


@dataclass
class ActivityService:
    settings: RuntimeSettings
    store: StoreLocation
    transport: Transport
    app: ActivityApplication
    directory: CustomerDirectory
    read_model: ActivityReadModel
    parking: ParkingLot
    clock: Callable[[], datetime]
    wakers: list[Waker] = field(default_factory=list)
    watch_waker: Waker = field(default_factory=Waker)

    @classmethod
    def build(
        cls,
        settings: RuntimeSettings,
        transport: Transport,
        clock: Callable[[], datetime] = system_clock,
    ) -> ActivityService:
        store = settings.store("activity")
        env = store.env()
        wakers = [Waker(), Waker(), Waker()]  # relay, projector, gap relay
        watch_waker = Waker()

        def saved() -> None:
            for waker in wakers:
                waker.notify()

        with store.creating():
            directory = CustomerDirectory(env, on_changed=lambda *_: watch_waker.notify())
            read_model = ActivityReadModel(env)
            parking = ParkingLot(env, "activity")
            app = ActivityApplication(env, directory=directory, clock=clock, on_saved=saved)
        return cls(
            settings,
            store,
            transport,
            app,
            directory,
            read_model,
            parking,
            clock,
            wakers,
            watch_waker,
        )

    def checks(self) -> dict[str, Check]:
        """What /readyz asks, in the API and in worker processes alike."""
        return {
            "event_store": self.app.recorder.max_notification_id,
            "transport": self.transport.ping,
        }

    def api(self, auth: Authenticator, *, root_path: str = "") -> FastAPI:
        api = ActivityApi(
            app=self.app,
            auth=auth,
            checks=self.checks(),
            max_body_bytes=self.settings.max_body_bytes,
            overlaps=lambda a: self.read_model.overlapping(a.owner, a.starts_at, a.ends_at, a.id),
            extra_routers=[
                read_router(
                    self.read_model, auth, self.clock, caught_up(self.app, self.read_model)
                ),
                parked_router(self.parking, auth),
            ],
        )
        web = create_app(api, root_path=root_path)
        ParkedGauge(self.parking).register(api.registry)
        return web

    def workers(self, roles: Iterable[str]) -> list[Worker]:
        wanted = set(roles)
        workers: list[Worker] = []
        if "relay" in wanted:
            workers.append(Worker("activity-relay", self._run_relay))
            workers.append(Worker("activity-gap-relay", self._run_gap_relay))
        if "projector" in wanted:
            workers.append(Worker("activity-projector", self._run_projector))
        if "consumer" in wanted:
            workers.append(Worker("activity-customer-directory", self._run_consumer))
            workers.append(Worker("activity-parked-messages", self._retries().run))
            workers.append(Worker("activity-customer-watch", self._run_watch))
        return workers

    def _run_relay(self, stop: threading.Event) -> None:
        publisher = self.transport.publisher()
        tracking = relay_tracking(self.store.env())
        try:
            ActivityRelay(
                self.app,
                publisher,
                tracking,
                topic=self.settings.topic(ACTIVITY_EVENTS),
                parking=self.parking,
            ).run(stop, self.wakers[0], listen_dsn=self.store.postgres_dsn)
        finally:
            publisher.close()
            tracking.close()

    def _run_gap_relay(self, stop: threading.Event) -> None:
        publisher = self.transport.publisher()
        tracking = gap_tracking(self.store.env())
        try:
            GapRelay(
                self.app,
                publisher,
                tracking,
                topic=self.settings.topic(R8_GAPS),
                parking=self.parking,
            ).run(stop, self.wakers[2], listen_dsn=self.store.postgres_dsn)
        finally:
            publisher.close()
            tracking.close()

    def _run_watch(self, stop: threading.Event) -> None:
        watch = CustomerWatch(self.app, self.read_model, self.directory, self.clock)
        watch.run(stop, self.watch_waker)

    def _run_projector(self, stop: threading.Event) -> None:
        follower(self.app, self.read_model, parking=self.parking).run(
            stop, self.wakers[1], listen_dsn=self.store.postgres_dsn
        )

    def _retries(self) -> MessageRetries:
        return MessageRetries(self.parking, CONSUMER_WORKER, self.directory.handle)

    def _run_consumer(self, stop: threading.Event) -> None:
        policy = RetryPolicy(
            infrastructure=INFRASTRUCTURE_ERRORS,
            park=message_parker(self.parking, CONSUMER_WORKER),
        )
        consumer = self.transport.consumer(
            [self.settings.topic(CUSTOMERS)],
            self.settings.consumer_group(CONSUMER_GROUP),
            self.directory.handle,
            policy=policy,
            stop=stop,
        )
        try:
            consumer.run(stop)
        finally:
            consumer.close()

    def close(self) -> None:
        self.app.close()
        self.read_model.close()
        self.directory.close()
        self.parking.close()
