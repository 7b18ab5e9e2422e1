"""The outbox relay every service runs: its notification log → a topic, at least once.

A subclass says which stored events leave the service (`topics`) and turns a batch into
messages (`messages`); publishing returns only once the broker has acknowledged, and only
then is the position recorded, so a crash in between repeats the batch (same `ce_id`s).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from crm_contracts.wire import WireMessage
from eventsourcing.application import Application

from crm_platform.follower import Batch, LogFollower, Waker
from crm_platform.messaging import Publisher
from crm_platform.parking import ParkingLot
from crm_platform.sqlview import SqlView

log = logging.getLogger(__name__)


class Relay:
    def __init__(
        self,
        app: Application[Any],
        publisher: Publisher,
        tracking: SqlView,
        *,
        topic: str,
        topics: Sequence[str],
        batch_size: int = 500,
        parking: ParkingLot | None = None,
    ) -> None:
        self.app = app
        self.topic = topic
        self._publisher = publisher
        self._follower = LogFollower(
            app,
            tracking,
            deliver=self._deliver,
            topics=topics,
            batch_size=batch_size,
            parking=parking,
        )

    def messages(self, batch: Batch) -> list[WireMessage]:
        raise NotImplementedError

    @property
    def position(self) -> int:
        """The last notification id known to be on the topic (0: nothing yet)."""
        return int(self._follower.position)

    def lag(self) -> int:
        """How many notification ids (of any aggregate) lie beyond the position."""
        return int(self._follower.lag())

    def step(self) -> int:
        """Publish one batch and track it; returns how many events it held (0: caught up)."""
        return int(self._follower.step())

    def catch_up(self) -> int:
        """Publish everything recorded so far; returns how many events went out."""
        return int(self._follower.catch_up())

    def run(
        self,
        stop: threading.Event,
        waker: Waker | None = None,
        *,
        listen_dsn: str | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        """Relay until `stop`, woken by `waker` and (PostgreSQL) the NOTIFY of every save."""
        log.info("%s relaying to %s", self.app.name, self.topic)
        self._follower.run(stop, waker, poll_interval, listen_dsn=listen_dsn)

    def _deliver(self, batch: Batch) -> None:
        # Raising here leaves the position where it was: the same batch comes again.
        self._publisher.publish(self.messages(batch))
