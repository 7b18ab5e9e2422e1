"""The activity read models: tables folded from the Activity events of the notification log.

One view, `ActivityReadModel` ("activity_rm"), holds three tables, fed by one `LogFollower`
that reads only the Activity event topics (customer files and idempotency records are not
read at all):

- `activities`: one row per activity, its current state (listing, overdue, R8 report);
- `timeline`: one row per activity event, with a short Danish summary (customer timeline);
- `moves`: one row per move (R1), for how often work gets pushed.

Everything here is rebuildable from the log: `rebuild()` folds the whole log into a fresh
view with the same `apply`, and `compare()` tells whether two views hold the same rows.

`apply` folds a batch in memory and writes it with a handful of statements (one SELECT for
the rows it continues, one upsert for activities, one insert each for timeline and moves),
since a rebuild replays a million events and a statement per event would dominate it.
The event → row mapping is the pure function `fold`.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from crm_contracts.enums import ActivityType, MoveReason
from crm_platform.follower import Batch, LogFollower
from crm_platform.parking import ParkingLot
from crm_platform.sqlview import ViewTransaction
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from activity.application import ActivityApplication
from activity.domain import CANCELLED, COMPLETED, PLANNED, Activity, CustomerFile
from activity.read_queries import (
    ACTIVITY_COLUMNS,
    TABLE_DDL,
    TABLES,
    ActivityQueries,
    index_ddl,
)
from activity.rules import CustomerEntry

LIVE_NAME = "activity_rm"
REBUILD_NAME = "activity_rm_rebuild"
REBUILD_BATCH = 5_000  # as fast as 20k on 1M events (measured), with 50 MB less held per batch
_LOAD_CHUNK = 500  # keeps SQLite's IN lists under its bound-parameter limit

# Each Activity event class and the name the timeline gives it.
_EVENT_NAMES: dict[type[Any], str] = {
    Activity.Planned: "planned",
    Activity.Registered: "registered",
    Activity.Moved: "moved",
    Activity.Retyped: "retyped",
    Activity.Reassigned: "reassigned",
    Activity.Completed: "completed",
    Activity.Cancelled: "cancelled",
    Activity.AttachmentAdded: "attachment_added",
    Activity.Edited: "edited",
}
ACTIVITY_TOPICS: tuple[str, ...] = tuple(get_topic(cls) for cls in _EVENT_NAMES)
GAP_EVENTS: tuple[type[Any], ...] = (CustomerFile.GapOpened, CustomerFile.GapClosed)
FOLLOWED_TOPICS: tuple[str, ...] = (*ACTIVITY_TOPICS, *(get_topic(c) for c in GAP_EVENTS))

Row = dict[str, Any]
TimelineRow = tuple[str, str, int, int, str, str, str, str, str]
MoveRow = tuple[str, int, str, str, str, str, str, str]

# -- the fold: domain event → rows, no I/O ------------------------------------------------

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
SUMMARY_MAX = 200
_TYPE_LABELS = {t.value: t.label for t in ActivityType}
_REASON_LABELS = {
    MoveReason.NO_ANSWER.value: "ingen svar",
    MoveReason.CUSTOMER_REQUEST.value: "kundens ønske",
    MoveReason.CONSULTANT.value: "konsulentens ønske",
    MoveReason.OTHER.value: "andet",
}


class UnknownActivity(LookupError):
    """An event continues an activity the view has no row for: the view missed its start."""


def _at(moment: datetime) -> str:
    """`crm_platform.sqlview.iso`, faster for UTC times: a rebuild formats 2–3 per event."""
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        moment = moment.astimezone(UTC)
    # %-formatting measured twice as fast as isoformat() or an f-string here
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        *(moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second),
        moment.microsecond,
    )


def _label(type_code: str) -> str:
    return _TYPE_LABELS.get(type_code, type_code)


def _when(moment: datetime) -> str:
    local = moment.astimezone(COPENHAGEN)  # as the consultant reads it, summer time and all
    return f"{local.day:02d}.{local.month:02d}.{local.year} kl. {local.hour:02d}:{local.minute:02d}"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def _created(event: Any, at: str, registered: bool) -> Row:
    start = event.held_at if registered else event.starts_at
    return {
        "activity_id": str(event.originator_id),
        "customer_id": event.customer_id,
        "owner": event.owner,
        "type": event.type,
        "channel": event.channel,
        "subject": event.subject,
        "status": COMPLETED if registered else PLANNED,
        "registered": registered,
        "starts_at": _at(start),
        "ends_at": _at(start if registered else event.ends_at),
        "move_count": 0,
        "created_at": at,
        "closed_at": at if registered else None,
    }


def fold(row: Row | None, event: Any, seq: int) -> tuple[Row, TimelineRow, MoveRow | None]:
    """One Activity event applied to its activity's row (None before the first event).

    Returns the new row (the given one is left untouched), the event's timeline entry and,
    for a move, its moves row. `seq` is the event's notification id.
    """
    cls = type(event)
    at = _at(event.timestamp)
    if cls is Activity.Planned:
        new = _created(event, at, registered=False)
        summary = f"{_label(event.type)} planlagt {_when(event.starts_at)}: {event.subject}"
    elif cls is Activity.Registered:
        new = _created(event, at, registered=True)
        what = event.subject or event.note
        how = "importeret" if getattr(event, "imported", False) else "registreret"
        summary = f"{_label(event.type)} {how}, holdt {_when(event.held_at)}: {what}"
    elif row is None:
        raise UnknownActivity(
            f"{cls.__qualname__} v{event.originator_version} continues activity "
            f"{event.originator_id}, which this view has not seen start"
        )
    else:
        new = dict(row)
        summary = _change(new, event, at)
    version = event.originator_version
    new["version"], new["updated_at"] = version, at
    move: MoveRow | None = None
    if cls is Activity.Moved:
        assert row is not None
        move = (
            *(new["activity_id"], version, row["owner"], event.reason, at),
            *(row["starts_at"], new["starts_at"], event.actor),
        )
    entry: TimelineRow = (
        *(new["customer_id"], new["activity_id"], version, seq, at, _EVENT_NAMES[cls]),
        *(new["type"], event.actor, _clip(summary)),
    )
    return new, entry, move


def _change(row: Row, event: Any, at: str) -> str:
    """Applies a non-creating event to `row` (a copy) and says what happened."""
    cls = type(event)
    label = _label(row["type"])
    if cls is Activity.Moved:
        reason = _REASON_LABELS.get(event.reason, event.reason)
        row["starts_at"], row["ends_at"] = _at(event.starts_at), _at(event.ends_at)
        row["move_count"] += 1
        return f"{label} flyttet til {_when(event.starts_at)} ({reason})"
    if cls is Activity.Retyped:
        row["type"], row["channel"] = event.type, event.channel
        return f"{label} ændret til {_label(event.type)}"
    if cls is Activity.Reassigned:
        previous, row["owner"] = row["owner"], event.owner
        return f"{label} overdraget fra {previous} til {event.owner}"
    if cls is Activity.Completed:
        row["status"], row["closed_at"] = COMPLETED, at
        held = getattr(event, "held_at", None) or event.timestamp
        return f"{label} gennemført {_when(held)}. Næste skridt: {event.next_step}"
    if cls is Activity.Cancelled:
        row["status"], row["closed_at"] = CANCELLED, at
        return f"{label} aflyst: {event.reason}"
    if cls is Activity.Edited:
        row["subject"] = event.subject
        return f"{label} redigeret: {event.subject}"
    if cls is Activity.AttachmentAdded:
        return f"Bilag tilføjet til {label.lower()}: {event.filename}"
    raise TypeError(f"not an Activity event this read model knows: {cls.__qualname__}")


def _apply_gap(tx: ViewTransaction, event: Any) -> None:
    """An R8 gap opened (a row) or closed (no row): only open gaps are listed."""
    if isinstance(event, CustomerFile.GapClosed):
        tx.execute("DELETE FROM {t}gaps WHERE customer_id = ?", (event.customer_id,))
        return
    tx.execute(
        "INSERT INTO {t}gaps VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id)"
        " DO UPDATE SET since = excluded.since, why = excluded.why,"
        " segment = excluded.segment, owner = excluded.owner,"
        " activity_id = excluded.activity_id, opened_at = excluded.opened_at,"
        " version = excluded.version",
        (
            event.customer_id,
            _at(event.since),
            event.why,
            event.segment,
            event.owner,
            str(event.activity_id) if event.activity_id else None,
            _at(event.timestamp),
            event.originator_version,
        ),
    )


def fold_batch(
    rows: dict[UUID, Row], events: Iterable[tuple[int, Any]]
) -> tuple[list[TimelineRow], list[MoveRow]]:
    """Folds (seq, event) pairs in log order into `rows` (activity id → row), in place."""
    timeline: list[TimelineRow] = []
    moves: list[MoveRow] = []
    for seq, event in events:
        key = event.originator_id
        rows[key], entry, move = fold(rows.get(key), event, seq)
        timeline.append(entry)
        if move is not None:
            moves.append(move)
    return timeline, moves


# -- the view -------------------------------------------------------------------------------


def _conflict(table: str) -> str:
    if table != "activities":
        # Tracking already refuses a batch twice; this keeps a replay harmless regardless.
        return " ON CONFLICT DO NOTHING"
    updates = ", ".join(f"{c} = excluded.{c}" for c in ACTIVITY_COLUMNS[1:])
    return f" ON CONFLICT (activity_id) DO UPDATE SET {updates}"


# SQLite: one row per execution, as `executemany` loops in C.
_SQLITE_WRITES = {
    table: f"INSERT INTO {{t}}{table} ({', '.join(columns)})"  # noqa: S608
    f" VALUES ({', '.join('?' for _ in columns)})" + _conflict(table)
    for table, (columns, _) in TABLES.items()
}
_activity_values = itemgetter(*ACTIVITY_COLUMNS)  # a row's values in column order, in C
_SELECT_ACTIVITIES = f"SELECT {', '.join(ACTIVITY_COLUMNS)} FROM {{t}}activities"  # noqa: S608


class ActivityReadModel(ActivityQueries):
    """All activity read models in one view, so one follower and one tracking position
    keep them consistent with each other."""

    name = LIVE_NAME

    def __init__(self, env: Mapping[str, str], *, name: str | None = None) -> None:
        self.ddl = (*TABLE_DDL, *index_ddl(name or self.name))
        self.filling = False
        """True while `rebuild` fills tables reset without indexes (see `_write`)."""
        super().__init__(env, name=name)

    def apply(self, tx: ViewTransaction, batch: Batch) -> None:
        """The follower's `apply`: the batch's effects, in the follower's transaction."""
        self._apply_activities(tx, [(n.id, e) for n, e in batch if type(e) in _EVENT_NAMES])
        for _, event in batch:
            if isinstance(event, GAP_EVENTS):
                _apply_gap(tx, event)

    def _apply_activities(self, tx: ViewTransaction, events: list[tuple[int, Any]]) -> None:
        if not events:
            return
        # Only activities that started before this batch have a row to continue.
        first: dict[UUID, int] = {}
        for _, event in events:
            first.setdefault(event.originator_id, event.originator_version)
        rows = self._load(tx, sorted(str(a) for a, version in first.items() if version > 1))
        timeline, moves = fold_batch(rows, events)
        self._write(tx, "activities", [_activity_values(r) for r in rows.values()])
        self._write(tx, "timeline", timeline)
        self._write(tx, "moves", moves)

    def _load(self, tx: ViewTransaction, ids: Sequence[str]) -> dict[UUID, Row]:
        found: list[Mapping[str, Any]] = []
        if self.is_postgres and ids:
            tx.execute(_SELECT_ACTIVITIES + " WHERE activity_id = ANY(?)", (list(ids),))
            found = tx.fetchall()
        else:
            for at in range(0, len(ids), _LOAD_CHUNK):
                chunk = ids[at : at + _LOAD_CHUNK]
                marks = ", ".join("?" for _ in chunk)
                tx.execute(_SELECT_ACTIVITIES + f" WHERE activity_id IN ({marks})", chunk)
                found += tx.fetchall()
        rows: dict[UUID, Row] = {}
        for r in found:
            row = dict(r)
            row["registered"] = bool(row["registered"])  # SQLite's BOOLEAN comes back as 0/1
            rows[UUID(row["activity_id"])] = row
        return rows

    def _write(self, tx: ViewTransaction, table: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if not self.is_postgres:
            tx.executemany(_SQLITE_WRITES[table], rows)
            return
        # ViewTransaction has no COPY (see the notes on sqlview): use its psycopg cursor.
        cursor: Any = tx._cursor
        columns = ", ".join(TABLES[table][0])
        if self.filling and table != "activities":
            # A rebuild fills fresh tables with their unique keys not yet created, so the
            # staged insert's ON CONFLICT guards nothing: COPY straight in (half the
            # server's work for the largest table, timeline).
            with cursor.copy(f"COPY {self.table(table)} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        # PostgreSQL: COPY into a temporary table, then one INSERT … SELECT. psycopg's
        # `executemany`, and even array parameters, spend more time per row in Python than
        # the server spends on the row.
        stage = f"{self.name}_stage_{table}"
        tx.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage}"
            f" (LIKE {{t}}{table}) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        tx.execute(
            f"INSERT INTO {{t}}{table} ({columns}) SELECT {columns} FROM {stage}"  # noqa: S608
            + _conflict(table)
        )

    def reset(self, source: str = ActivityApplication.name, *, indexes: bool = True) -> None:
        """Empties the tables and forgets how far `source` was read, in one transaction.

        Without `indexes` the indexes (the unique keys of timeline and moves among them) are
        left out until `create_indexes()`: a rebuild fills the tables faster without them.
        """
        tracking = self._tracking_table()
        with self.transaction() as tx:
            for table in TABLES:
                tx.execute(f"DROP TABLE IF EXISTS {{t}}{table}")
            for statement in self.ddl if indexes else TABLE_DDL:
                tx.execute(statement)
            tx.execute(
                f"DELETE FROM {tracking} WHERE application_name = ?",  # noqa: S608
                (self.tracking_name(source),),
            )

    def create_indexes(self) -> None:
        with self.transaction() as tx:
            for statement in index_ddl(self.name):
                tx.execute(statement)
            for table in TABLES if self.is_postgres else ():
                tx.execute(f"ANALYZE {{t}}{table}")  # statistics for the planner, right away

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows in primary-key order, values as stored (booleans normalised)."""
        dumped: dict[str, list[tuple[Any, ...]]] = {}
        for table, (columns, key) in TABLES.items():
            rows = self.query(
                f"SELECT {', '.join(columns)} FROM {{t}}{table} ORDER BY {', '.join(key)}"  # noqa: S608
            )
            dumped[table] = [
                tuple(bool(r[c]) if c == "registered" else r[c] for c in columns) for r in rows
            ]
        return dumped

    def _tracking_table(self) -> str:
        # eventsourcing names it: one shared `tracking` table in SQLite, `<view>_tracking`
        # in the view's PostgreSQL schema.
        if not self.is_postgres:
            return "tracking"
        recorder: Any = self.recorder
        return f'"{recorder.datastore.schema}"."{recorder.tracking_table_name}"'


# -- following, rebuilding, comparing -------------------------------------------------------


class _Unlisted(Exception):
    """A value this fast path does not decode itself: the event goes the mapper's way."""


_FROM_ISO = datetime.fromisoformat


def _decode_value(obj: dict[str, Any]) -> Any:
    # The transcodings activity's events use, as eventsourcing encodes them: `{"_type_":
    # name, "_data_": text}`. A plain dict of two keys without `_type_` stays a dict.
    if len(obj) == 2 and (kind := obj.get("_type_")) is not None:
        if kind == "datetime_iso":
            return _FROM_ISO(obj["_data_"])
        if kind == "uuid_hex":
            return UUID(obj["_data_"])
        raise _Unlisted(kind)
    return obj


class LeanMapper:
    """The application's mapper for reading, the same events for less: one JSON pass with a
    hook that knows the transcodings activity's events use, instead of the transcoder's
    generic dispatch per object (the mapper was the largest share of a rebuild's CPU,
    bench/results/profiles/replay-before.txt). Anything else (another transcoding, a class
    version to upcast) goes through the mapper itself; with a cipher or compressor
    configured, every event does."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        self._mapper = mapper
        self._plain = mapper.cipher is None and mapper.compressor is None
        self._decode = json.JSONDecoder(object_hook=_decode_value).decode
        self._classes: dict[str, type[Any]] = {}

    def to_domain_event(self, stored: StoredEvent) -> Any:
        cls = self._classes.get(stored.topic)
        if cls is None:
            cls = self._classes[stored.topic] = resolve_topic(stored.topic)
        if not self._plain or getattr(cls, "class_version", 1) != 1:
            return self._mapper.to_domain_event(stored)
        try:
            state: dict[str, Any] = self._decode(stored.state.decode("utf8"))
        except _Unlisted:
            return self._mapper.to_domain_event(stored)
        if "class_version" in state:
            return self._mapper.to_domain_event(stored)
        originator_id = stored.originator_id
        state["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        )
        state["originator_version"] = stored.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event


def follower(
    app: Application[Any],
    view: ActivityReadModel,
    *,
    batch_size: int = 500,
    parking: ParkingLot | None = None,
) -> LogFollower:
    """The one follower that feeds `view` from `app`'s notification log."""
    return LogFollower(
        app,
        view,
        apply=view.apply,
        topics=FOLLOWED_TOPICS,
        batch_size=batch_size,
        parking=parking,
    )


class _NoCustomers:
    """A rebuild only reads the log: no command runs, so no customer is ever asked for."""

    def get(self, customer_id: str) -> CustomerEntry | None:
        return None


def rebuild(
    env: Mapping[str, str],
    *,
    name: str = REBUILD_NAME,
    in_place: bool = False,
    app: Application[Any] | None = None,
    batch_size: int = REBUILD_BATCH,
) -> ActivityReadModel:
    """Folds the whole log into the view `name` from position zero and returns it, caught up.

    By default a shadow view beside the live one, which keeps serving meanwhile; compare
    them with `compare()`. `in_place=True` empties and refills the live view instead: stop
    its followers first (a running one would keep its cached position and race the
    rebuild), and expect the read API to see partial tables until this returns.

    A swap without that gap (not done here): rebuild the shadow, then in one transaction
    drop the live tables, rename the shadow's tables (and re-create the indexes under the
    live names) and record the shadow's position as the live tracking position; a live
    follower then finds its next tracking insert refused and re-reads its position.
    """
    view = ActivityReadModel(env, name=LIVE_NAME if in_place else name)
    reader = app or ActivityApplication(dict(env), directory=_NoCustomers())
    collecting = gc.isenabled()
    try:
        view.reset(reader.name, indexes=False)
        feeder = follower(reader, view, batch_size=batch_size)
        feeder.mapper = LeanMapper(reader.mapper)
        # A batch's events, rows and tuples hold no cycles; the collector's passes over
        # them were a fifth of a rebuild's CPU (measured), for nothing to collect.
        gc.disable()
        view.filling = True
        try:
            feeder.catch_up()
        finally:
            view.filling = False
            if collecting:
                gc.enable()
        view.create_indexes()
    except BaseException:
        view.close()
        raise
    finally:
        if app is None:
            reader.close()
    return view


def compare(
    a: ActivityReadModel,
    b: ActivityReadModel,
    *,
    source: str = ActivityApplication.name,
    limit: int = 50,
) -> list[str]:
    """What differs between two views (empty: the same rows at the same log position)."""
    differences: list[str] = []
    if a.position(source) != b.position(source):
        differences.append(
            f"positions differ: {a.name} at {a.position(source)}, {b.name} at {b.position(source)}"
        )
    dump_a, dump_b = a.dump(), b.dump()
    for table, (columns, key) in TABLES.items():
        at = [columns.index(c) for c in key]
        rows_a = {tuple(r[i] for i in at): r for r in dump_a[table]}
        rows_b = {tuple(r[i] for i in at): r for r in dump_b[table]}
        for k in sorted(rows_a.keys() | rows_b.keys()):
            if rows_a.get(k) != rows_b.get(k):
                differences.append(
                    f"{table} {k}: {a.name}={rows_a.get(k)} {b.name}={rows_b.get(k)}"
                )
                if len(differences) >= limit:
                    return differences
    return differences
