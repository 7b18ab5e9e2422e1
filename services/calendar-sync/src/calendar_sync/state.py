"""The sync state: one row per activity, the customer names, and the consumers' tracking.

A row says what the activity looks like (the view, at `view_version`), up to which version
it is applied (`version`: the two differ while the latest change failed), where its
calendar entry is (`mailbox`, `event_id`, `change_key`), how that went (`status`, `error`)
and which customer name its subject shows. The consumers write a row and their tracking
position in ONE transaction (`save(..., track=...)`), after the calendar call: see
projector.py for why that order.

`revision` counts the row's own changes. Three writers may touch a row (the activity
consumer, the customer-name refresh, reconciliation), each calling the calendar before it
commits; `save` is a compare-and-set on `revision`, and a writer that lost the race re-reads
and calls the calendar again, so the last calendar write always matches the last commit.
`revision` is also the version of the status message relayed on crm.calendar.sync.v1: the
relay publishes rows whose `published` < `revision` (the rows are the outbox).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import ActivityType, Channel, SyncStatus
from crm_platform.messaging import Delivery
from crm_platform.sqlview import Row, SqlView, iso, parse_iso

from calendar_sync.domain import ActivityView, Lifecycle

_COLUMNS = (
    "activity_id, customer_id, owner, type, channel, subject, agenda, starts_at, ends_at,"
    " lifecycle, view_version, version, mailbox, event_id, change_key, status, error,"
    " error_version, shown_name, revision, published, updated_at"
)
_ENTRY_COLUMNS = ", ".join(f"e.{c.strip()}" for c in _COLUMNS.split(","))
_WRITTEN = tuple(c.strip() for c in _COLUMNS.split(",") if c.strip() != "published")
# Column names are ours (no input reaches these strings); values always go as parameters.
_SELECT = f"SELECT {_COLUMNS} FROM {{t}}entries"  # noqa: S608
_INSERT = (
    f"INSERT INTO {{t}}entries ({', '.join(_WRITTEN)}, published)"  # noqa: S608
    f" VALUES ({', '.join('?' * len(_WRITTEN))}, 0)"
    " ON CONFLICT (activity_id) DO NOTHING RETURNING activity_id"
)
_UPDATE = (
    f"UPDATE {{t}}entries SET {', '.join(f'{c} = ?' for c in _WRITTEN[1:])}"  # noqa: S608
    " WHERE activity_id = ? AND revision = ? RETURNING activity_id"
)
_VIEW = (
    "customer_id, owner, type, channel, subject, agenda, starts_at, ends_at, lifecycle,"
    " view_version"
)
_FAILED = (
    f"INSERT INTO {{t}}entries (activity_id, {_VIEW}, version, mailbox, status, error,"  # noqa: S608
    " error_version, revision, published, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 1, 0, ?)"
    " ON CONFLICT (activity_id) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _VIEW.split(","))
    + ", status = excluded.status, error = excluded.error,"
    " error_version = excluded.error_version, revision = {t}entries.revision + 1,"
    " updated_at = excluded.updated_at"
)
_INDEXES = {
    "entries_owner": "entries (owner)",
    "entries_mailbox": "entries (mailbox)",
    "entries_customer": "entries (customer_id)",
    # The status relay's outbox query runs after every save: without this it scans every
    # row, and the scan grows with the table. Partial, so it holds only the pending rows.
    "entries_unpublished": "entries (updated_at, activity_id) WHERE published < revision",
}


@dataclass(frozen=True)
class Inbound:
    """What handling one activity message needs to know, read in one statement."""

    seen: bool  # the message's partition position is tracked already
    record: SyncRecord | None  # the activity's row (None: none yet)
    customer_name: str | None  # the name of the customer the message names (None: unknown)


@dataclass(frozen=True)
class SyncRecord:
    activity_id: str
    view: ActivityView | None  # what the CRM wants shown (None: nothing known yet)
    version: int  # the last applied activity version (0: none yet)
    mailbox: str  # the calendar the entry is in (or was last, or should be)
    event_id: str | None
    change_key: str | None
    status: SyncStatus
    error: str | None
    error_version: int | None
    shown_name: str | None  # the customer name in the subject; None: the id was shown
    revision: int  # 0: not stored yet
    updated_at: datetime

    @property
    def owner(self) -> str:
        return self.view.owner if self.view is not None else self.mailbox


class SyncState(SqlView):
    name = "calendar_sync"
    ddl = (
        "CREATE TABLE IF NOT EXISTS {t}entries ("
        " activity_id TEXT PRIMARY KEY, customer_id TEXT, owner TEXT, type TEXT, channel TEXT,"
        " subject TEXT, agenda TEXT, starts_at TEXT, ends_at TEXT, lifecycle TEXT,"
        " view_version BIGINT, version BIGINT NOT NULL, mailbox TEXT NOT NULL, event_id TEXT,"
        " change_key TEXT,"
        " status TEXT NOT NULL, error TEXT, error_version BIGINT, shown_name TEXT,"
        " revision BIGINT NOT NULL, published BIGINT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {t}customers ("
        " customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, version BIGINT NOT NULL)",
        *(
            f"CREATE INDEX IF NOT EXISTS calendar_sync_{n} ON {{t}}{on}"
            for n, on in _INDEXES.items()
        ),
    )

    def __init__(
        self, env: Mapping[str, str], *, on_saved: Callable[[], None] | None = None
    ) -> None:
        super().__init__(env)
        self._on_saved = on_saved or (lambda: None)

    # --- activity rows --------------------------------------------------------------------
    def get(self, activity_id: str) -> SyncRecord | None:
        row = self.query_one(_SELECT + " WHERE activity_id = ?", (activity_id,))
        return _record(row) if row is not None else None

    def inbound(self, delivery: Delivery, activity_id: str, customer_id: str) -> Inbound:
        """The tracking position, the row and the customer's name, in one round trip.

        The three reads used to be a transaction each, three quarters of a message's cost.
        Reading them together is no weaker: each was a separate snapshot before, and all
        three are checked again by the commit (tracking uniqueness, the row's revision).
        """
        row = self.read_one(
            f"SELECT p.seen, c.name AS customer_name, {_ENTRY_COLUMNS}"  # noqa: S608
            f" FROM (SELECT {self.position_sql()} AS seen) p"
            " LEFT JOIN {t}entries e ON e.activity_id = ?"
            " LEFT JOIN {t}customers c ON c.customer_id = ?",
            (self.tracking_name(delivery.tracking_name), activity_id, customer_id),
        )
        assert row is not None  # the derived table always has its one row
        seen = row["seen"] is not None and delivery.offset <= int(row["seen"])
        record = _record(row) if row["activity_id"] is not None else None
        name = row["customer_name"]
        return Inbound(seen, record, str(name) if name is not None else None)

    def for_owner(self, owner: str) -> list[SyncRecord]:
        """Rows whose activity belongs to `owner`, or whose entry is in their calendar."""
        rows = self.query(
            _SELECT + " WHERE owner = ? OR mailbox = ? ORDER BY activity_id",
            (owner, owner),
        )
        return [_record(r) for r in rows]

    def save(
        self, record: SyncRecord, *, expected_revision: int, track: Delivery | None = None
    ) -> bool:
        """Write the row (and the tracking position) if nobody changed it since it was read.

        False: another writer got there first; nothing was written. A tracking position
        that is already recorded raises eventsourcing's IntegrityError (another consumer
        applied this message): nothing is written then either.
        """
        values = _values(record, expected_revision + 1)
        try:
            with self.transaction() as tx:
                if expected_revision == 0:
                    tx.execute(_INSERT, values)
                else:
                    tx.execute(_UPDATE, (*values[1:], record.activity_id, expected_revision))
                if tx.fetchone() is None:
                    raise _Conflict
                if track is not None:
                    tx.track(track.tracking_name, track.offset)
        except _Conflict:
            return False
        self._on_saved()
        return True

    def record_failure(self, view: ActivityView, error: str, at: datetime) -> None:
        """Note that showing `view` failed, and why (no tracking: the message is retried).

        The view is kept although it is not applied (`version` stays): should the message
        end in the dead-letter topic, reconciliation can still put it in the calendar, and
        the next event of the activity builds on it.
        """
        with self.transaction() as tx:
            tx.execute(
                _FAILED,
                (
                    view.activity_id,
                    *_view_values(view),
                    view.owner,
                    SyncStatus.FAILED.value,
                    error[:500],
                    view.version,
                    iso(at),
                ),
            )
        self._on_saved()

    def track(self, delivery: Delivery) -> None:
        """Record a message that changes no row (stale, or nothing the calendar shows)."""
        with self.transaction() as tx:
            tx.track(delivery.tracking_name, delivery.offset)

    # --- customer names -------------------------------------------------------------------
    def customer_name(self, customer_id: str) -> str | None:
        row = self.query_one("SELECT name FROM {t}customers WHERE customer_id = ?", (customer_id,))
        return str(row["name"]) if row is not None else None

    def apply_customer(
        self, customer_id: str, snapshot: CustomerSnapshot | None, delivery: Delivery
    ) -> None:
        """Upsert (None: forget) a customer's name with the partition's tracking position.

        An older snapshot never overwrites a newer one, so redelivery is harmless.
        """
        with self.transaction() as tx:
            if snapshot is None:
                tx.execute("DELETE FROM {t}customers WHERE customer_id = ?", (customer_id,))
            else:
                tx.execute(
                    "INSERT INTO {t}customers VALUES (?, ?, ?) ON CONFLICT (customer_id)"
                    " DO UPDATE SET name = excluded.name, version = excluded.version"
                    " WHERE {t}customers.version < excluded.version",
                    (customer_id, snapshot.name, snapshot.version),
                )
            tx.track(delivery.tracking_name, delivery.offset)

    def stale_names(self, customer_id: str | None = None) -> list[str]:
        """Activities whose live entry shows another name than the customer's current one."""
        statement = (
            "SELECT e.activity_id FROM {t}entries e JOIN {t}customers c"
            " ON c.customer_id = e.customer_id WHERE e.status = ?"
            " AND (e.shown_name IS NULL OR e.shown_name <> c.name)"
        )
        params: tuple[Any, ...] = (SyncStatus.SYNCED.value,)
        if customer_id is not None:
            statement += " AND e.customer_id = ?"
            params += (customer_id,)
        return [str(r["activity_id"]) for r in self.query(statement + " ORDER BY 1", params)]

    # --- the status outbox ----------------------------------------------------------------
    def unpublished(self, limit: int = 200) -> list[tuple[SyncRecord, int]]:
        rows = self.query(
            _SELECT + " WHERE published < revision ORDER BY updated_at, activity_id LIMIT ?",
            (limit,),
        )
        return [(_record(r), int(r["revision"])) for r in rows]

    def mark_published(self, done: list[tuple[str, int]]) -> None:
        with self.transaction() as tx:
            tx.executemany(
                "UPDATE {t}entries SET published = ? WHERE activity_id = ? AND published < ?",
                [(revision, activity_id, revision) for activity_id, revision in done],
            )

    def unpublished_count(self) -> int:
        row = self.query_one("SELECT COUNT(*) AS n FROM {t}entries WHERE published < revision")
        return int(row["n"]) if row is not None else 0

    def count_by_status(self) -> dict[str, int]:
        rows = self.query("SELECT status, COUNT(*) AS n FROM {t}entries GROUP BY status")
        return {str(r["status"]): int(r["n"]) for r in rows}


class _Conflict(Exception):
    """Rolls the transaction back when the compare-and-set found another revision."""


def _values(record: SyncRecord, revision: int) -> tuple[Any, ...]:
    """The `_WRITTEN` columns, in order: all but `published`, which only the relay raises."""
    view = record.view
    return (
        record.activity_id,
        *(_view_values(view) if view is not None else (None,) * 10),
        record.version,
        record.mailbox,
        record.event_id,
        record.change_key,
        record.status.value,
        record.error,
        record.error_version,
        record.shown_name,
        revision,
        iso(record.updated_at),
    )


def _view_values(view: ActivityView) -> tuple[Any, ...]:
    return (
        view.customer_id,
        view.owner,
        view.type.value,
        view.channel.value,
        view.subject,
        view.agenda,
        iso(view.starts_at),
        iso(view.ends_at),
        view.lifecycle.value,
        view.version,
    )


def _record(row: Row) -> SyncRecord:
    view = None
    if row["lifecycle"] is not None:
        starts_at, ends_at = parse_iso(row["starts_at"]), parse_iso(row["ends_at"])
        assert starts_at is not None
        assert ends_at is not None
        view = ActivityView(
            activity_id=str(row["activity_id"]),
            customer_id=str(row["customer_id"]),
            owner=str(row["owner"]),
            type=ActivityType(row["type"]),
            channel=Channel(row["channel"]),
            subject=str(row["subject"]),
            agenda=row["agenda"],
            starts_at=starts_at,
            ends_at=ends_at,
            lifecycle=Lifecycle(row["lifecycle"]),
            version=int(row["view_version"]),
        )
    updated_at = parse_iso(row["updated_at"])
    assert updated_at is not None
    return SyncRecord(
        activity_id=str(row["activity_id"]),
        view=view,
        version=int(row["version"]),
        mailbox=str(row["mailbox"]),
        event_id=row["event_id"],
        change_key=row["change_key"],
        status=SyncStatus(row["status"]),
        error=row["error"],
        error_version=row["error_version"],
        shown_name=row["shown_name"],
        revision=int(row["revision"]),
        updated_at=updated_at,
    )
