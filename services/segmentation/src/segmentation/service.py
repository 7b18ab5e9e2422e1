"""Wiring the segmentation service from settings: store, application, workers, API.

One place builds everything, whichever way the service runs: every role in one process
(embedded), or one role per process in production (`api`, `relay`, `recompute`, `calendar`,
`consumer`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import psycopg
from crm_contracts.topics import ACTIVITY_EVENTS, CUSTOMERS
from crm_platform.actors import system_clock
from crm_platform.auth import Authenticator, Principal, Role
from crm_platform.errors import NotFound
from crm_platform.eventstore import StoreLocation
from crm_platform.follower import Waker, listen_for_saves
from crm_platform.messaging import RetryPolicy
from crm_platform.messaging.transport import Transport
from crm_platform.ops import Check
from crm_platform.parked_api import parked_router
from crm_platform.parking import MessageRetries, ParkedGauge, ParkingLot, message_parker
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Worker
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI

from segmentation.api import SegmentationApi, create_app
from segmentation.application import SegmentationApplication
from segmentation.attainment import ActivityEventsConsumer
from segmentation.attainment_api import attainment_router, customer_body
from segmentation.cockpit_api import cockpit_router
from segmentation.recompute_worker import RecomputeRunner
from segmentation.relay import CustomerRelay, relay_tracking
from segmentation.rules import local_date

log = logging.getLogger(__name__)

ROLES: Final = ("api", "relay", "recompute", "calendar", "consumer")
CONSUMER_GROUP: Final = "segmentation.attainment"
CONSUMER_WORKER: Final = f"consumer:{CONSUMER_GROUP}"
# A database that is down is waited out; the message is fine and must not be dead-lettered.
INFRASTRUCTURE_ERRORS: Final = (OperationalError, InterfaceError, psycopg.OperationalError)
CALENDAR_INTERVAL: Final = 3600.0  # seconds: agreements start and end on whole days
# Who the background workers act as: the application lets services do what managers may.
SERVICE_ACTOR: Final = Principal(
    "segmentation-service", "Segmentation service", frozenset({Role.SERVICE})
)


@dataclass
class SegmentationService:
    settings: RuntimeSettings
    store: StoreLocation
    transport: Transport
    app: SegmentationApplication
    clock: Callable[[], datetime]
    attainment: ActivityEventsConsumer
    parking: ParkingLot
    relay_waker: Waker = field(default_factory=Waker)
    recompute_waker: Waker = field(default_factory=Waker)

    @classmethod
    def build(
        cls,
        settings: RuntimeSettings,
        transport: Transport,
        clock: Callable[[], datetime] = system_clock,
    ) -> SegmentationService:
        store = settings.store("segmentation")
        relay_waker, recompute_waker = Waker(), Waker()

        def saved() -> None:
            # A save may be a policy change (the recomputation starts at once) or a customer
            # change (its snapshot goes out at once); waking both costs one query each.
            relay_waker.notify()
            recompute_waker.notify()

        with store.creating():
            app = SegmentationApplication(store.env(), clock=clock, on_saved=saved)
            attainment = ActivityEventsConsumer(store.env(), app)
            parking = ParkingLot(store.env(), "segmentation")
        return cls(
            settings,
            store,
            transport,
            app,
            clock,
            attainment,
            parking,
            relay_waker,
            recompute_waker,
        )

    def checks(self) -> dict[str, Check]:
        """What /readyz asks, in the API and in worker processes alike."""
        return {
            "event_store": self.app.recorder.max_notification_id,
            "transport": self.transport.ping,
        }

    def api(self, auth: Authenticator, *, root_path: str = "") -> FastAPI:
        api = SegmentationApi(
            app=self.app,
            auth=auth,
            checks=self.checks(),
            max_body_bytes=self.settings.max_body_bytes,
            attainment=self._this_year,
            extra_routers=[
                attainment_router(self.attainment, self.app, auth, self.clock),
                cockpit_router(self.attainment, self.app, auth, self.clock),
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
            workers.append(Worker("segmentation-relay", self._run_relay))
        if "recompute" in wanted:
            workers.append(Worker("segmentation-recompute", self._run_recompute))
        if "calendar" in wanted:
            workers.append(Worker("segmentation-calendar", self._run_calendar))
        if "consumer" in wanted:
            workers.append(Worker("segmentation-consumer", self._run_consumer))
            workers.append(
                Worker(
                    "segmentation-parked-messages",
                    MessageRetries(self.parking, CONSUMER_WORKER, self.attainment.handle).run,
                )
            )
        return workers

    def _run_relay(self, stop: threading.Event) -> None:
        publisher = self.transport.publisher()
        tracking = relay_tracking(self.store.env())
        try:
            CustomerRelay(
                self.app,
                publisher,
                tracking,
                topic=self.settings.topic(CUSTOMERS),
                parking=self.parking,
            ).run(stop, self.relay_waker, listen_dsn=self.store.postgres_dsn)
        finally:
            publisher.close()
            tracking.close()

    def _run_recompute(self, stop: threading.Event) -> None:
        listener: threading.Thread | None = None
        channel = getattr(self.app.recorder, "channel_name", None)
        if self.store.postgres_dsn and channel:
            # Another process (the API) adopts the policy: its NOTIFY wakes this one.
            listener = threading.Thread(
                target=listen_for_saves,
                args=(self.store.postgres_dsn, channel, self.recompute_waker, stop),
                name="segmentation-recompute-listen",
                daemon=True,
            )
            listener.start()

        # The runner waits on its waker between jobs: a shutdown wakes it, not a poll.
        def wake_on_stop() -> None:
            stop.wait()
            self.recompute_waker.notify()

        threading.Thread(
            target=wake_on_stop, name="segmentation-recompute-stop", daemon=True
        ).start()
        try:
            RecomputeRunner(self.app).run_forever(stop, self.recompute_waker)
        finally:
            if listener is not None:
                listener.join(timeout=5)

    def _run_calendar(self, stop: threading.Event) -> None:
        """Apply the agreement calendar at start and then once an hour: idempotent, so
        several instances or a restart cost a few queries, never a second event."""
        while not stop.is_set():
            try:
                result = self.app.apply_calendar(SERVICE_ACTOR)
                log.info(
                    "agreement calendar for %s: %d checked, %d changed",
                    result.today,
                    result.checked,
                    result.changed,
                )
            except Exception:
                log.exception("agreement calendar failed; trying again in an hour")
            stop.wait(CALENDAR_INTERVAL)

    def _this_year(self, customer_id: str) -> dict[str, Any] | None:
        now = self.clock()
        try:
            found = self.attainment.customer_attainment(customer_id, local_date(now).year, now)
        except NotFound:
            return None
        return customer_body(found).model_dump(mode="json")

    def _run_consumer(self, stop: threading.Event) -> None:
        """Activity events → attainment counts (and discovery meetings → potentials)."""
        policy = RetryPolicy(
            infrastructure=INFRASTRUCTURE_ERRORS,
            park=message_parker(self.parking, CONSUMER_WORKER),
        )
        consumer = self.transport.consumer(
            [self.settings.topic(ACTIVITY_EVENTS)],
            self.settings.consumer_group(CONSUMER_GROUP),
            self.attainment.handle,
            policy=policy,
            stop=stop,
        )
        try:
            consumer.run(stop)
        finally:
            consumer.close()

    def close(self) -> None:
        self.attainment.close()
        self.parking.close()
        self.app.close()
