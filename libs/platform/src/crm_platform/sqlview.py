"""Read-model tables plus eventsourcing tracking, written in one transaction.

A view owns a few tables in the service's database (the SQLite file or the PostgreSQL
schema of its event store) and records in the same transaction how far it has read a
source, with eventsourcing's tracking recorder: after a crash it resumes exactly there and
a redelivered message has no second effect.

Statements are written once, with `?` placeholders and `{t}` before each table name; the
view adapts them to the database it runs on. Times are stored as fixed-width ISO-8601 UTC
text so they sort and compare the same on both databases.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, Tracking, TrackingRecorder
from eventsourcing.utils import Environment

from crm_platform.eventsourcing_internals import insert_tracking

Row = Mapping[str, Any]


def iso(moment: datetime | None) -> str | None:
    """The stored form of a time: UTC, microseconds, fixed width, so text order is time order."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not stored")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class ViewTransaction:
    """One open transaction on the view's database."""

    def __init__(self, view: SqlView, cursor: Any) -> None:
        self._view = view
        self._cursor = cursor

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(self._view.adapt(statement), tuple(params))

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._view.adapt(statement), [tuple(r) for r in rows])

    def fetchall(self) -> list[Row]:
        return [dict(r) for r in self._cursor.fetchall()]

    def fetchone(self) -> Row | None:
        row = self._cursor.fetchone()
        return dict(row) if row is not None else None

    def track(self, source: str, position: int) -> None:
        """Record that everything of `source` up to `position` is in these tables."""
        # In our transaction: the public insert_tracking would open one of its own.
        insert_tracking(
            self._view.recorder, self._cursor, Tracking(self._view.tracking_name(source), position)
        )


class SqlView:
    """Base of every read model: subclasses set `name` and `ddl`, and add their queries."""

    name: str = ""
    ddl: Sequence[str] = ()

    def __init__(self, env: Mapping[str, str], *, name: str | None = None) -> None:
        self.name = name or self.name
        factory = InfrastructureFactory[TrackingRecorder].construct(
            Environment(self.name, dict(env))
        )
        self.recorder: TrackingRecorder = factory.tracking_recorder()
        self.is_postgres = env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres"
        self._prefix = (
            f'"{env.get("POSTGRES_SCHEMA") or "public"}".{self.name}_'
            if self.is_postgres
            else f"{self.name}_"
        )
        self._datastore: Any = self.recorder.datastore  # type: ignore[attr-defined]
        with self.transaction() as tx:
            for statement in self.ddl:
                tx.execute(statement)

    def adapt(self, statement: str) -> str:
        return _adapt(statement, self._prefix, self.is_postgres)

    def table(self, short_name: str) -> str:
        return f"{self._prefix}{short_name}"

    def tracking_name(self, source: str) -> str:
        return f"{self.name}/{source}"

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[ViewTransaction]:
        with self._datastore.transaction(commit=commit) as cursor:
            yield ViewTransaction(self, cursor)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one statement. On PostgreSQL without an explicit transaction (one round
        trip instead of BEGIN, SELECT and ROLLBACK; one statement sees one snapshot anyway):
        use `transaction` when several reads must agree with each other."""
        if not self.is_postgres:
            with self.transaction(commit=False) as tx:
                tx.execute(statement, params)
                return tx.fetchall()
        with self._datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(self.adapt(statement), tuple(params))
            return [dict(row) for row in cursor.fetchall()]

    def query_one(self, statement: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.query(statement, params)
        return rows[0] if rows else None

    def read_one(self, statement: str, params: Sequence[Any] = ()) -> Row | None:
        """One row from one statement (as `query`, without fetching the rest)."""
        if not self.is_postgres:
            # SQLite's reads are local calls; its transaction adds no round trips.
            return self.query_one(statement, params)
        with self._datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(self.adapt(statement), tuple(params), prepare=True)
            row = cursor.fetchone()
        return dict(row) if row is not None else None

    def position(self, source: str) -> int | None:
        """How far this view has read `source` (None: nothing yet)."""
        return self.recorder.max_tracking_id(self.tracking_name(source))

    def has_seen(self, source: str, position: int) -> bool:
        seen = self.position(source)
        return seen is not None and position <= seen

    def position_sql(self) -> str:
        """A scalar subquery for `position`; its one `?` takes `tracking_name(source)`.

        Lets a view read how far it is along with its own rows in one statement, instead of
        a transaction of its own per message.
        """
        recorder: Any = self.recorder
        if self.is_postgres:
            schema = recorder.datastore.schema
            table = f'"{schema}"."{recorder.tracking_table_name}"'
        else:
            table = "tracking"
        # Only our own identifiers reach this string; the source goes as a parameter.
        return f"(SELECT MAX(notification_id) FROM {table} WHERE application_name = ?)"  # noqa: S608

    def close(self) -> None:
        self._datastore.close()


@lru_cache(maxsize=1024)
def _adapt(statement: str, prefix: str, postgres: bool) -> str:
    statement = statement.replace("{t}", prefix)
    if postgres:
        statement = re.sub(r"\?", "%s", statement.replace("%", "%%"))
    return statement
