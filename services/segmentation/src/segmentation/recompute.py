"""The `Recomputation` record: one re-segmentation after a policy change, and its progress.

Which page it has reached, how many customers it has looked at and changed, and how it ended
(done, failed, or superseded by a newer policy). The worker that does the paging is
recompute_worker.py.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

QUEUED, RUNNING, DONE, FAILED, SUPERSEDED = "queued", "running", "done", "failed", "superseded"


class Recomputation(Aggregate):
    """One policy change's recomputation of every customer, with durable progress."""

    class Queued(Aggregate.Created):
        policy_version: int
        effective_on: date
        total: int
        actor: str

    class Started(Aggregate.Event):
        stop: int  # the registry's last seq when it started: later customers saw the policy
        total: int

        def apply(self, aggregate: Any) -> None:
            aggregate.state, aggregate.started_at = RUNNING, self.timestamp
            aggregate.stop, aggregate.total = self.stop, self.total

    class Progressed(Aggregate.Event):
        position: int  # the last registry seq processed
        done: int
        changed: int

        def apply(self, aggregate: Any) -> None:
            aggregate.position, aggregate.done, aggregate.changed = (
                self.position,
                self.done,
                self.changed,
            )

    class Finished(Aggregate.Event):
        def apply(self, aggregate: Any) -> None:
            aggregate.state, aggregate.finished_at = DONE, self.timestamp

    class Failed(Aggregate.Event):
        error: str

        def apply(self, aggregate: Any) -> None:
            aggregate.state, aggregate.error = FAILED, self.error
            aggregate.finished_at = self.timestamp

    class Resumed(Aggregate.Event):
        def apply(self, aggregate: Any) -> None:
            aggregate.state, aggregate.error, aggregate.finished_at = RUNNING, None, None

    class Superseded(Aggregate.Event):
        by: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.state, aggregate.superseded_by = SUPERSEDED, self.by
            aggregate.finished_at = self.timestamp

    def __init__(self, policy_version: int, effective_on: date, total: int, actor: str) -> None:
        self.policy_version, self.effective_on = policy_version, effective_on
        self.total, self.actor = total, actor
        self.state = QUEUED
        self.stop: int | None = None
        self.position = self.done = self.changed = 0
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.error: str | None = None
        self.superseded_by: UUID | None = None

    @classmethod
    def queue(
        cls, *, policy_version: int, effective_on: date, total: int, actor: str, now: datetime
    ) -> Recomputation:
        return cls._create(
            cls.Queued,
            timestamp=now,
            policy_version=policy_version,
            effective_on=effective_on,
            total=total,
            actor=actor,
        )

    @property
    def finished(self) -> bool:
        return self.state in (DONE, SUPERSEDED)

    def start(self, *, stop: int, total: int, now: datetime) -> None:
        assert self.state == QUEUED
        self.trigger_event(self.Started, timestamp=now, stop=stop, total=total)

    def progress(self, *, position: int, processed: int, changed: int, now: datetime) -> None:
        self.trigger_event(
            self.Progressed,
            timestamp=now,
            position=position,
            done=self.done + processed,
            changed=self.changed + changed,
        )

    def finish(self, now: datetime) -> None:
        self.trigger_event(self.Finished, timestamp=now)

    def fail(self, error: str, now: datetime) -> None:
        self.trigger_event(self.Failed, timestamp=now, error=error[:1000])

    def resume(self, now: datetime) -> None:
        assert self.state == FAILED
        self.trigger_event(self.Resumed, timestamp=now)

    def supersede(self, by: UUID, now: datetime) -> None:
        if not self.finished:
            self.trigger_event(self.Superseded, timestamp=now, by=by)
