"""Following an application's notification log in batches: read models and relays.

eventsourcing's own ProjectionRunner commits one event per transaction and needs a
recorder that supports subscriptions (SQLite's does not). Read models rebuilt from a million
events need batches, and the embedded mode runs on SQLite, so this follower reads
`select_notifications` after its tracked position, hands a batch over, and records the
batch's last position in the same transaction as the batch's effects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification
from psycopg import sql

from crm_platform.outages import TRANSIENT_ERRORS as TRANSIENT
from crm_platform.parking import ParkedEvent, ParkingLot
from crm_platform.sqlview import SqlView, ViewTransaction

WAITING = "an earlier event of the same subject is parked; this one waits behind it"

log = logging.getLogger(__name__)

Batch = Sequence[tuple[Notification, Any]]
Apply = Callable[[ViewTransaction, Batch], None]
Deliver = Callable[[Batch], None]


class EventMapper(Protocol):
    def to_domain_event(self, stored_event: Any) -> Any: ...


class Waker:
    """Wakes a follower as soon as there may be something new, instead of waiting a full poll."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def notify(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        if self._event.wait(timeout):
            self._event.clear()


class LogFollower:
    """Feeds batches of (notification, domain event) after the tracked position.

    `deliver` runs first, outside the transaction (a relay publishes there and returns only
    once the broker has acknowledged); `apply` runs inside the transaction that records the
    position. A crash between the two repeats the batch: at-least-once.
    """

    def __init__(
        self,
        app: Application[Any],
        view: SqlView,
        *,
        source: str | None = None,
        apply: Apply | None = None,
        deliver: Deliver | None = None,
        topics: Sequence[str] = (),
        batch_size: int = 500,
        parking: ParkingLot | None = None,
    ) -> None:
        self.app = app
        self.view = view
        self.source = source or app.name
        self.worker = view.tracking_name(self.source)
        self._apply = apply
        self._deliver = deliver
        self._topics = tuple(topics)
        self._batch_size = batch_size
        self._position: int | None = None
        self._parking = parking
        self._blocked: set[str] | None = None
        self.mapper: EventMapper = app.mapper
        """What turns a notification into the event `apply` gets; a rebuild may swap in a
        faster one that gives the same events."""

    @property
    def position(self) -> int:
        if self._position is None:
            self._position = self.view.position(self.source) or 0
        return self._position

    def step(self) -> int:
        """Process one batch; returns how many notifications it held (0: caught up).

        With a parking lot, a batch that fails for any reason but an outage is done again one
        event at a time, and the events that fail alone are parked; without one, the batch is
        retried until it succeeds.
        """
        notifications = self.app.recorder.select_notifications(
            start=self.position,
            limit=self._batch_size,
            topics=self._topics,
            inclusive_of_start=False,
        )
        if not notifications:
            return 0
        if self._parking is None:
            return self._process(notifications)
        try:
            return self._process(notifications)
        except TRANSIENT:
            raise
        except Exception as error:
            log.warning(
                "%s: a batch after %s failed (%s); going one event at a time",
                self.worker,
                self._position,
                error,
            )
            return self._one_by_one(notifications)

    def _process(self, notifications: Sequence[Notification]) -> int:
        blocked = self._blocked_subjects()
        to_domain_event = self.mapper.to_domain_event
        if blocked:
            waiting = [n for n in notifications if str(n.originator_id) in blocked]
            batch = [
                (n, to_domain_event(n))
                for n in notifications
                if str(n.originator_id) not in blocked
            ]
        else:  # the usual case: no uuid formatted twice per event for nothing
            waiting, batch = [], [(n, to_domain_event(n)) for n in notifications]
        if self._deliver is not None and batch:
            self._deliver(batch)
        last = notifications[-1].id
        try:
            with self.view.transaction() as tx:
                if self._apply is not None and batch:
                    self._apply(tx, batch)
                for notification in waiting:
                    self._park(tx, notification, WAITING)
                tx.track(self.source, last)
        except IntegrityError:
            # Another instance got there first: re-read where the view stands, and what it
            # may have parked meanwhile.
            self._position = None
            self._blocked = None
            return 0
        self._position = last
        return len(notifications)

    def _one_by_one(self, notifications: Sequence[Notification]) -> int:
        done = 0
        for notification in notifications:
            try:
                done += self._process([notification])
                continue
            except TRANSIENT:
                raise
            except Exception as error:
                failure = error
            try:
                with self.view.transaction() as tx:
                    self._park(tx, notification, failure)
                    tx.track(self.source, notification.id)
            except IntegrityError:
                self._position = None
                self._blocked = None
                return done
            self._position = notification.id
            done += 1
        return done

    def _park(
        self, tx: ViewTransaction, notification: Notification, error: Exception | str
    ) -> None:
        assert self._parking is not None
        subject = str(notification.originator_id)
        self._parking.park(
            tx,
            worker=self.worker,
            position=str(notification.id),
            subject=subject,
            error=error,
            payload={
                "notification_id": notification.id,
                "topic": notification.topic,
                "version": notification.originator_version,
            },
        )
        self._blocked_subjects().add(subject)

    def _blocked_subjects(self) -> set[str]:
        # Only this worker parks and resolves its entries, so after one read the set stays
        # right without a query per batch; another instance's progress (IntegrityError)
        # makes it read again.
        if self._blocked is None:
            self._blocked = self._parking.subjects(self.worker) if self._parking else set()
        return self._blocked

    def retry_parked(self) -> int:
        """Process again what an operator marked for retry; returns how many succeeded.

        A subject's entries go in log order and stop at the first that fails again, so its
        later events keep waiting behind it.
        """
        if self._parking is None:
            return 0
        due = self._parking.due(self.worker)
        by_subject: dict[str, list[ParkedEvent]] = {}
        for entry in sorted(due, key=lambda e: int(e.position)):
            by_subject.setdefault(entry.subject, []).append(entry)
        resolved = 0
        for subject, entries in by_subject.items():
            for entry in entries:
                try:
                    self._reprocess(entry)
                except TRANSIENT:
                    raise
                except Exception as error:
                    self._parking.failed_again(entry.id, error)
                    break
                resolved += 1
            if not self._parking.parked_count(self.worker, subject):
                self._blocked_subjects().discard(subject)
        return resolved

    def _reprocess(self, entry: ParkedEvent) -> None:
        assert self._parking is not None
        position = int(entry.position)
        found = self.app.recorder.select_notifications(
            start=position, limit=1, inclusive_of_start=True
        )
        if not found or found[0].id != position:
            raise LookupError(f"notification {position} is no longer in the log")
        notification = found[0]
        batch = [(notification, self.mapper.to_domain_event(notification))]
        if self._deliver is not None:
            self._deliver(batch)
        with self.view.transaction() as tx:
            if self._apply is not None:
                self._apply(tx, batch)
            self._parking.resolve(tx, entry.id)

    def catch_up(self) -> int:
        total = 0
        while done := self.step():
            total += done
        return total

    def lag(self) -> int:
        return max(self.app.recorder.max_notification_id() or 0, 0) - self.position

    def run(
        self,
        stop: threading.Event,
        waker: Waker | None = None,
        poll_interval: float = 1.0,
        *,
        listen_dsn: str | None = None,
    ) -> None:
        """Follow until `stop`; a failing batch is logged and tried again after a pause.

        Woken by `waker` (embedded: the application's `on_saved`) and, given `listen_dsn` on
        PostgreSQL, by the NOTIFY every save sends; polling covers a lost wake-up.
        """
        waker = waker or Waker()
        listener: threading.Thread | None = None
        channel: str | None = getattr(self.app.recorder, "channel_name", None)
        if listen_dsn is not None and channel is not None:
            listener = threading.Thread(
                target=listen_for_saves,
                daemon=True,
                name=f"{self.source}-listen",
                args=(listen_dsn, channel, waker, stop),
            )
            listener.start()
        try:
            self._follow(stop, waker, poll_interval)
        finally:
            if listener is not None:
                listener.join(timeout=5)

    def _follow(self, stop: threading.Event, waker: Waker, poll_interval: float) -> None:
        while not stop.is_set():
            try:
                if self.step():
                    continue
                self.retry_parked()
            except Exception:
                log.exception(
                    "%s failed on a batch after %s; retrying", self.source, self._position
                )
                self._position = None
                stop.wait(poll_interval)
                continue
            waker.wait(poll_interval)


def listen_for_saves(dsn: str, channel: str, waker: Waker, stop: threading.Event) -> None:
    """Wake `waker` on every PostgreSQL NOTIFY eventsourcing sends after a save.

    Runs until `stop`; a lost connection is re-opened (the follower's polling covers the gap).
    """
    while not stop.is_set():
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                while not stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        waker.notify()
        except psycopg.OperationalError as error:
            log.warning("LISTEN %s lost (%s); reconnecting", channel, error)
            stop.wait(1.0)
