"""The one place that leans on eventsourcing beyond its public API, each use for a reason.

- `NotifiesSaves`: a hook after every save (wakes the relay and projector of this process at
  once) through `Application._notify`, which eventsourcing calls after each save.
- `save_unchecked`: `Application.save` without its per-object runtime-Protocol check, which
  costs more than encoding the event when a recomputation saves thousands of customers
  (measured, bench/RESULTS.md); built from `ProcessingEvent`, `_record`, `_take_snapshots`
  and `_notify`.
- `insert_tracking`: a tracking record in the caller's own transaction (a read model's rows
  and its position commit together); the public `insert_tracking` opens a transaction of its
  own.
- Segmentation's recorders (segmentation/recorders.py) extend `_insert_events`, the
  library's hook for writing more rows in the events' transaction.
- crm_platform.eventstore swaps `eventsourcing.postgres.ConnectionPool` for its resilient
  pool: there is no setting for the pool class.

`check_compatible()` says whether the installed eventsourcing still has all of these; a test
runs it, so an upgrade that moves any of them fails loudly instead of misbehaving quietly.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar
from uuid import UUID

import eventsourcing.postgres
import eventsourcing.sqlite
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Recording, Tracking

__all__ = [
    "WRITTEN_FOR",
    "NotifiesSaves",
    "check_compatible",
    "insert_tracking",
    "save_unchecked",
]

WRITTEN_FOR: Final = "9.5"
"""The eventsourcing release line these uses were written and tested against."""

TID = TypeVar("TID", bound=UUID | str)


class NotifiesSaves(Application[TID]):
    """An application that calls `on_saved` (if set) after every save it commits."""

    on_saved: Callable[[], None] | None = None

    def _notify(self, recordings: list[Recording[TID]]) -> None:
        super()._notify(recordings)
        if self.on_saved is not None:
            self.on_saved()


def save_unchecked(
    app: Application[Any], objs: Sequence[Any], **kwargs: Any
) -> list[Recording[Any]]:
    """`app.save(*objs, **kwargs)`, minus the runtime-Protocol check of each object."""
    processing = ProcessingEvent[Any]()
    for obj in objs:
        if isinstance(obj, Aggregate):
            processing.events.extend(obj.collect_events())
            processing.aggregates[obj.id] = obj
        else:
            processing.collect_events(obj)
    processing.saved_kwargs.update(kwargs)
    recordings: list[Recording[Any]] = app._record(processing)
    app._take_snapshots(processing)
    app._notify(recordings)
    return recordings


def insert_tracking(recorder: Any, cursor: Any, tracking: Tracking) -> None:
    """Record `tracking` with `cursor`, inside the transaction the caller has open."""
    recorder._insert_tracking(cursor, tracking)


def check_compatible() -> list[str]:
    """What the installed eventsourcing lacks of the above (empty: all there)."""
    problems: list[str] = []
    version = importlib.metadata.version("eventsourcing")
    if not (version == WRITTEN_FOR or version.startswith(f"{WRITTEN_FOR}.")):
        problems.append(
            f"eventsourcing {version} installed; these uses were written for {WRITTEN_FOR}"
        )
    needed: list[tuple[object, str]] = [
        (Application, "_record"),
        (Application, "_take_snapshots"),
        (Application, "_notify"),
        (ProcessingEvent[Any](), "saved_kwargs"),
        (eventsourcing.sqlite.SQLiteApplicationRecorder, "_insert_events"),
        (eventsourcing.sqlite.SQLiteTrackingRecorder, "_insert_tracking"),
        (eventsourcing.postgres.PostgresApplicationRecorder, "_insert_events"),
        (eventsourcing.postgres.PostgresTrackingRecorder, "_insert_tracking"),
        (eventsourcing.postgres, "ConnectionPool"),
    ]
    for owner, name in needed:
        if not hasattr(owner, name):
            where = getattr(owner, "__qualname__", getattr(owner, "__name__", repr(owner)))
            problems.append(f"{where}.{name} is gone")
    return problems
