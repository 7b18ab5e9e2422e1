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
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification
from psycopg import sql

from crm_platform.sqlview import SqlView, ViewTransaction

log = logging.getLogger(__name__)

Batch = Sequence[tuple[Notification, Any]]
Apply = Callable[[ViewTransaction, Batch], None]
Deliver = Callable[[Batch], None]


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
    ) -> None:
        self.app = app
        self.view = view
        self.source = source or app.name
        self._apply = apply
        self._deliver = deliver
        self._topics = tuple(topics)
        self._batch_size = batch_size
        self._position: int | None = None

    @property
    def position(self) -> int:
        if self._position is None:
            self._position = self.view.position(self.source) or 0
        return self._position

    def step(self) -> int:
        """Process one batch; returns how many notifications it held (0: caught up)."""
        notifications = self.app.recorder.select_notifications(
            start=self.position,
            limit=self._batch_size,
            topics=self._topics,
            inclusive_of_start=False,
        )
        if not notifications:
            return 0
        batch = [(n, self.app.mapper.to_domain_event(n)) for n in notifications]
        if self._deliver is not None:
            self._deliver(batch)
        last = notifications[-1].id
        try:
            with self.view.transaction() as tx:
                if self._apply is not None:
                    self._apply(tx, batch)
                tx.track(self.source, last)
        except IntegrityError:
            # Another instance got there first: re-read where the view stands.
            self._position = None
            return 0
        self._position = last
        return len(batch)

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
