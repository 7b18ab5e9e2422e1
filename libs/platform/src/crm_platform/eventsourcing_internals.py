"""The one place that leans on eventsourcing beyond its public API, each use for a reason.

- `NotifiesSaves`: a hook after every save (wakes the relay and projector of this process at
  once) through `Application._notify`, which eventsourcing calls after each save. Its `save`
  is `save_unchecked`, and its repository folds events with `mutate_all` instead of
  `project_aggregate`, whose per-event runtime-Protocol assert (slow on Python 3.11) was a
  sixth of the command path's CPU in the application (measured, bench/RESULTS.md).
- `get_many`: several aggregates from one statement (a command that changes an activity
  loads it with its customer's file); reads the recorder's table name.
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
- `OneTripRecorder`: the PostgreSQL application recorder, saving a command's events in one
  statement and one round trip instead of a pipelined transaction of five (measured on the
  command path, bench/RESULTS.md). It reads the recorder's table, type and channel names and
  extends `sql_create_statements` with a function of its own. eventsourcing's own
  `POSTGRES_ENABLE_DB_FUNCTIONS` function does the same without the table lock, which would
  let a reader of the notification log pass over an id that commits later.

`check_compatible()` says whether the installed eventsourcing still has all of these; a test
runs it, so an upgrade that moves any of them fails loudly instead of misbehaving quietly.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar
from uuid import UUID

import eventsourcing.postgres
import eventsourcing.sqlite
from eventsourcing.application import Application, ProcessingEvent, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    Recording,
    StoredEvent,
    Tracking,
)
from eventsourcing.utils import retry, strtobool
from psycopg.sql import SQL, Identifier

__all__ = [
    "WRITTEN_FOR",
    "NotifiesSaves",
    "OneTripRecorder",
    "check_compatible",
    "insert_tracking",
    "mutate_all",
    "save_unchecked",
]

WRITTEN_FOR: Final = "9.5"
"""The eventsourcing release line these uses were written and tested against."""

TID = TypeVar("TID", bound=UUID | str)


def mutate_all(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's `project_aggregate`, minus its runtime-Protocol assert per event."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class _Repository(Repository[Any]):
    def get(self, aggregate_id: Any, *, projector_func: Any = mutate_all, **kwargs: Any) -> Any:
        return super().get(aggregate_id, projector_func=projector_func, **kwargs)


class NotifiesSaves(Application[TID]):
    """An application that calls `on_saved` (if set) after every save it commits, and saves
    and loads without eventsourcing's runtime-Protocol checks (see the module docstring)."""

    on_saved: Callable[[], None] | None = None

    def construct_repository(self) -> Repository[TID]:
        # As `Application.construct_repository`, with `_Repository`.
        maxsize = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return _Repository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=int(maxsize) if maxsize else None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(
                self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")
            ),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[TID]]:
        return save_unchecked(self, objs, **kwargs)

    def _notify(self, recordings: list[Recording[TID]]) -> None:
        super()._notify(recordings)
        if self.on_saved is not None:
            self.on_saved()


class OneTripRecorder(eventsourcing.postgres.PostgresApplicationRecorder):
    """Inserts a save's events with one call of a function that takes the table lock,
    notifies the channel and inserts, in the statement's own transaction (autocommit).

    Saves that carry more (a tracking record, a subclass's rows in `_insert_events`) take
    the library's transaction as before.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        function = Identifier(f"crm_save_{self.channel_name}"[:63])
        id_type = Identifier(self.datastore.originator_id_type)
        # The events go as four arrays, sent in binary: the library's array of composites
        # goes as text, escaped field by field with a regex (measured: more CPU than encoding
        # the events).
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}"
                "(ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) "
                "RETURNING notification_id; "
                "END; $BODY$"
            ).format(
                schema=schema,
                function=function,
                id_type=id_type,
                lock_timeout=self.datastore.lock_timeout,
                table=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
            )
        )
        self._one_trip = SQL(
            "SELECT notification_id FROM {schema}.{function}"
            "(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) AS notification_id"
        ).format(schema=schema, function=function, id_type=id_type)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        # eventsourcing passes `tracking=None` with every save.
        more = any(value is not None for value in kwargs.values())
        if more or not stored_events or type(self)._insert_events is not _BASE_INSERT_EVENTS:
            return super().insert_events(stored_events, **kwargs)
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._one_trip, columns, prepare=True)
            return [row["notification_id"] for row in curs.fetchall()]


_BASE_INSERT_EVENTS = eventsourcing.postgres.PostgresApplicationRecorder._insert_events


@retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
def get_many(app: Application[Any], ids: Sequence[UUID]) -> dict[UUID, Any]:
    """The current state of each aggregate of `ids` that exists, read together: on PostgreSQL
    one statement instead of one per aggregate. For applications without an aggregate cache
    or snapshots (it reads the events only)."""
    recorder: Any = app.recorder
    stored: list[StoredEvent]
    if isinstance(recorder, eventsourcing.postgres.PostgresAggregateRecorder):
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table}"
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (list(ids),), prepare=True)
            stored = [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]
    else:
        stored = [event for i in ids for event in recorder.select_events(i)]
    events: dict[Any, list[Any]] = {}
    for record in stored:
        events.setdefault(record.originator_id, []).append(app.mapper.to_domain_event(record))
    return {i: mutate_all(None, folded) for i, folded in events.items()}


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
        (Application, "AGGREGATE_CACHE_FASTFORWARD_SKIPPING"),
        (eventsourcing.postgres.PostgresAggregateRecorder, "select_events"),
        (Application, "DEEPCOPY_FROM_AGGREGATE_CACHE"),
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
