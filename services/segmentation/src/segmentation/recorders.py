"""The two application recorders of segmentation: eventsourcing's, plus the registry.

Each creates the registry table beside the events and, in `_insert_events` (the hook
eventsourcing's own process recorders use for tracking records), upserts the rows that
`SegmentationApplication.save` passed as `registry_rows`, inside the save's transaction.
Columns are declared once (registry.KINDS); here each database says how it stores a kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from operator import attrgetter
from typing import Any, Final
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composable, Identifier, Literal

from segmentation.registry import (
    ADDED,
    COLUMNS,
    KINDS,
    NEWER,
    NULLABLE,
    UPDATES,
    RegistryQueries,
    RegistryRow,
    RowValues,
)

_ID_CHUNK: Final = 500
_VALUES: Final = attrgetter(*KINDS)  # dataclasses.astuple deep-copies every value: too slow
_INDEXED: Final = ("segment", "agreement_ends_on", "owner", "cvr", "value_programme_starts_on")

# SQLite keeps uuids as hex, days and times as ISO text (ordered like the values), flags as 0/1.
_SQLITE_TYPES: Final = {
    "uuid": "TEXT",
    "text": "TEXT",
    "int": "INTEGER",
    "date": "TEXT",
    "timestamp": "TEXT",
    "bool": "INTEGER",
}
_TO_SQLITE: Final[Mapping[str, Callable[[Any], Any]]] = {
    "uuid": lambda v: v.hex,
    "date": date.isoformat,
    "timestamp": datetime.isoformat,
    "bool": int,
}
_FROM_SQLITE: Final[Mapping[str, Callable[[Any], Any]]] = {
    "uuid": UUID,
    "date": date.fromisoformat,
    "timestamp": datetime.fromisoformat,
    "bool": bool,
}
_POSTGRES_TYPES: Final = {
    "uuid": "uuid",
    "text": "text",
    "int": "bigint",
    "date": "date",
    "timestamp": "timestamptz",
    "bool": "boolean",
}


def _ddl(table: str, types: Mapping[str, str], seq: str) -> str:
    columns = ", ".join(
        f"{name} {types[kind]}{'' if name in NULLABLE else ' NOT NULL'}"
        + (" UNIQUE" if name == "id" else "")
        for name, kind in KINDS.items()
    )
    return f"CREATE TABLE IF NOT EXISTS {table} ({seq}, {columns})"


class SQLiteSegmentationRecorder(RegistryQueries, SQLiteApplicationRecorder):
    placeholder = "?"

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.registry_table = events_table_name.removesuffix("_events") + "_customer_registry"
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            _ddl(self.registry_table, _SQLITE_TYPES, "seq INTEGER PRIMARY KEY"),
        ]

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        t = self.registry_table
        # A table from before a column was added gets it (SQLite has no ADD COLUMN IF NOT
        # EXISTS), then the indexes, which may be on such a column.
        c.execute(f"PRAGMA table_info({t})")
        present = {r["name"] for r in c.fetchall()}
        for column in ADDED:
            if column not in present:
                c.execute(f"ALTER TABLE {t} ADD COLUMN {column} {_SQLITE_TYPES[KINDS[column]]}")
        for column in _INDEXED:
            c.execute(f"CREATE INDEX IF NOT EXISTS {t}_{column} ON {t} ({column})")
        self._fill_search_names(c)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # Events first: a version conflict fails before any row is touched.
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        params = self._upsert_params(kwargs)
        if params:
            c.executemany(self._upsert_statement(), params)
        return notification_ids

    def select_events_for(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        """The events of many aggregates in one query per 500 ids, by id then version."""
        found: list[StoredEvent] = []
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = [i.hex for i in ids[start : start + _ID_CHUNK]]
            marks = ", ".join("?" for _ in chunk)
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    "SELECT originator_id, originator_version, topic, state"  # noqa: S608
                    f" FROM {self.events_table_name} WHERE originator_id IN ({marks})"
                    " ORDER BY originator_id, originator_version",
                    chunk,
                )
                found.extend(
                    StoredEvent(
                        self.convert_originator_id(r["originator_id"]),
                        r["originator_version"],
                        r["topic"],
                        r["state"],
                    )
                    for r in c.fetchall()
                )
        return found

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as c:
            yield c

    def _id(self, value: UUID) -> Any:
        return value.hex

    def _day(self, day: date) -> Any:
        return day.isoformat()

    def _params(self, v: RowValues) -> tuple[Any, ...]:
        return tuple(
            value if value is None or kind not in _TO_SQLITE else _TO_SQLITE[kind](value)
            for value, kind in zip(_VALUES(v), KINDS.values(), strict=True)
        )

    def _row(self, r: Mapping[str, Any]) -> RegistryRow:
        values = {
            name: r[name]
            if r[name] is None or kind not in _FROM_SQLITE
            else _FROM_SQLITE[kind](r[name])
            for name, kind in KINDS.items()
        }
        return RegistryRow(seq=r["seq"], **values)


class PostgresSegmentationRecorder(RegistryQueries, PostgresApplicationRecorder):
    placeholder = "%s"

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        if datastore.enable_db_functions:
            # That insert path ignores save() keywords: the registry would silently go stale.
            raise ValueError("segmentation needs POSTGRES_ENABLE_DB_FUNCTIONS off")
        super().__init__(datastore, events_table_name=events_table_name)
        name = events_table_name.removesuffix("_events") + "_customer_registry"
        self.registry_table = f'"{datastore.schema}".{name}'
        statements: list[Composable] = [
            SQL(_ddl(self.registry_table, _POSTGRES_TYPES, "seq BIGSERIAL PRIMARY KEY")),
            # A table from before a column was added gets it (before the indexes on it). Looked
            # up first: ALTER TABLE locks the table out even when the column is there.
            *(
                SQL(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns"
                    " WHERE table_schema = {schema} AND table_name = {table}"
                    " AND column_name = {column}) THEN"
                    " ALTER TABLE {s}.{t} ADD COLUMN {c} {kind}; END IF; END $$"
                ).format(
                    kind=SQL(_POSTGRES_TYPES[KINDS[column]]),
                    schema=Literal(datastore.schema),
                    table=Literal(name),
                    column=Literal(column),
                    s=Identifier(datastore.schema),
                    t=Identifier(name),
                    c=Identifier(column),
                )
                for column in ADDED
            ),
            *(
                SQL("CREATE INDEX IF NOT EXISTS {i} ON {s}.{t} ({c})").format(
                    i=Identifier(f"{name}_{column}"),
                    s=Identifier(datastore.schema),
                    t=Identifier(name),
                    c=Identifier(column),
                )
                for column in _INDEXED
            ),
        ]
        self.sql_create_statements.extend(statements)  # type: ignore[arg-type]
        # One statement over arrays, sent in binary: one round trip and no escaping, where
        # executemany would cost a round trip per row.
        arrays = ", ".join(f"%b::{_POSTGRES_TYPES[kind]}[]" for kind in KINDS.values())
        self._array_upsert = (
            f"INSERT INTO {self.registry_table} AS r ({COLUMNS})"  # noqa: S608
            f" SELECT * FROM unnest({arrays}) ON CONFLICT (id) DO UPDATE SET {UPDATES}"
            f" WHERE {NEWER}"
        )
        # The events as four arrays sent in binary: the library's array of composites goes
        # as text, escaped field by field with a regex, which cost more CPU than encoding
        # the events (measured on imports and recomputations).
        self._columns_insert = SQL(
            "INSERT INTO {s}.{e} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(s=Identifier(datastore.schema), e=Identifier(events_table_name))

    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as curs:
            self._fill_search_names(curs)

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # Runs in the save's transaction just before the events are inserted; a version
        # conflict there rolls these rows back with everything else.
        super()._insert_events(curs, stored_events, **kwargs)
        params = self._upsert_params(kwargs)
        if params:
            curs.execute(self._array_upsert, [list(c) for c in zip(*params, strict=True)])

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # As the library's: the table lock (notification ids in commit order), the NOTIFY,
        # then the insert whose RETURNING the library reads next.
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self._columns_insert,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
        )

    def select_events_for(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {s}.{e}"
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(s=Identifier(self.datastore.schema), e=Identifier(self.events_table_name))
        found: list[StoredEvent] = []
        for start in range(0, len(ids), _ID_CHUNK):
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(statement, (list(ids[start : start + _ID_CHUNK]),))
                found.extend(
                    StoredEvent(
                        r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])
                    )
                    for r in curs.fetchall()
                )
        return found

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as curs:
            yield curs

    def _id(self, value: UUID) -> Any:
        return value

    def _day(self, day: date) -> Any:
        return day

    def _params(self, v: RowValues) -> tuple[Any, ...]:
        return tuple(_VALUES(v))

    def _row(self, r: Mapping[str, Any]) -> RegistryRow:
        return RegistryRow(seq=r["seq"], **{name: r[name] for name in KINDS})

    def _query(self, template: str, params: Sequence[Any]) -> list[RegistryRow]:
        # Plain tuples in RegistryRow's field order (the registry's queries select them so):
        # a dict per row and a keyword call per row were a tenth of a recomputation's CPU.
        with self._reading() as cursor:
            cursor.row_factory = tuple_row
            cursor.execute(self._statement(template), tuple(params))
            return [RegistryRow(*r) for r in cursor.fetchall()]
