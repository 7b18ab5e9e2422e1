"""The sync state: one row per activity, the mailboxes, the customer names, and the tracking.

A row says what the activity looks like (the view, at `view_version`), up to which version
it is applied (`version`), where its calendar entry is (`mailbox`, `event_id`, `change_key`),
how that went (`status`, `error`), which customer name its subject shows, and whether the
calendar still has to be brought to the view (`due_at`: when; NULL: nothing to do).

The consumers only write rows (the wanted view, `due_at`) and their tracking position, in ONE
transaction, and never call the calendar: a message is done once the state knows what it
wants. The calendar is written by the mailbox lanes (lanes.py), one holder per mailbox
cluster-wide (the `mailboxes` table's lease), each calling the calendar before it commits the
row (see projector.py for why that order).

`revision` counts the row's own changes. Several writers may touch a row (a consumer, the
name refresh, a lane, reconciliation); `save` is a compare-and-set on `revision`, and a writer
that lost the race re-reads, so the last calendar write always matches the last commit.
`revision` is also the version of the status message relayed on crm.calendar.sync.v1: the
relay publishes rows whose `published` < `revision` (the rows are the outbox).

Two clocks: `due_at`, `paused_until` and the budget follow the service's clock (Graph's
`Retry-After` is in its seconds; tests run it fast); a lease's `lease_until` follows the wall
clock, because it guards against another process while real requests are in flight.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import ActivityType, Channel, SyncStatus
from crm_platform.messaging import Delivery
from crm_platform.sqlview import Row, SqlView, ViewTransaction, iso, parse_iso

from calendar_sync.domain import ActivityView, Lifecycle

_COLUMNS = (
    "activity_id, customer_id, owner, type, channel, subject, agenda, starts_at, ends_at,"
    " lifecycle, view_version, version, mailbox, event_id, change_key, status, error,"
    " error_version, shown_name, revision, published, updated_at, due_at"
)
_ENTRY_COLUMNS = ", ".join(f"e.{c.strip()}" for c in _COLUMNS.split(","))
_WRITTEN = tuple(c.strip() for c in _COLUMNS.split(",") if c.strip() != "published")
# Column names are ours (no input reaches these strings); values always go as parameters.
_SELECT = f"SELECT {_COLUMNS} FROM {{t}}entries"  # noqa: S608
_INSERT = (
    f"INSERT INTO {{t}}entries ({', '.join(_WRITTEN)}, published, create_tried)"  # noqa: S608
    f" VALUES ({', '.join('?' * len(_WRITTEN))}, 0, 0)"
    " ON CONFLICT (activity_id) DO NOTHING RETURNING activity_id"
)
_UPDATE = (
    f"UPDATE {{t}}entries SET {', '.join(f'{c} = ?' for c in _WRITTEN[1:])}"  # noqa: S608
    " WHERE activity_id = ? AND revision = ? RETURNING activity_id"
)
_INDEXES = {
    "entries_owner": "entries (owner)",
    "entries_mailbox": "entries (mailbox)",
    "entries_customer": "entries (customer_id)",
    # The status relay's outbox query runs after every save: without this it scans every
    # row, and the scan grows with the table. Partial, so it holds only the pending rows.
    "entries_unpublished": "entries (updated_at, activity_id) WHERE published < revision",
}
# Created after `due_at` exists (tables made before it get the column first).
_DUE_INDEX = (
    "CREATE INDEX IF NOT EXISTS calendar_sync_entries_due ON {t}entries (due_at, owner)"
    " WHERE due_at IS NOT NULL"
)
_MAILBOX_COLUMNS = (
    "mailbox, holder, lease_until, paused_until, reason, code, since, checks, budget, updated_at"
)


@dataclass(frozen=True)
class Inbound:
    """What handling one activity message needs to know, read in one statement."""

    seen: bool  # the message's partition position is tracked already
    record: SyncRecord | None  # the activity's row (None: none yet)
    customer_name: str | None  # the name of the customer the message names (None: unknown)
    mailbox_code: str | None = None  # the target mailbox's Graph code while it is unavailable


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
    due_at: datetime | None = None  # the calendar still has to show `view` (None: it does)

    @property
    def owner(self) -> str:
        return self.view.owner if self.view is not None else self.mailbox


@dataclass(frozen=True)
class Due:
    """A row a lane took up (`SyncState.take_due`)."""

    record: SyncRecord
    first: bool  # taken up for the first time ever: no create of it was ever sent
    customer_name: str | None


def due_channel(schema: str) -> str:
    """The PostgreSQL NOTIFY channel on which saves name the mailboxes they made due.

    Channels are database-wide: the schema keeps installations on one database apart. A name
    is an identifier (63 bytes at most), so a long schema is shortened by a hash."""
    name = f"{schema}_calendar_sync_due"
    if len(name.encode()) > 63:
        name = "calendar_sync_due_" + hashlib.sha256(schema.encode()).hexdigest()[:40]
    return name


@dataclass(frozen=True)
class Leftover:
    """Entries to delete from a mailbox the activity left (reassigned elsewhere): the one
    known (`event_id`), and any other tagged with the activity ('': none known, but an
    attempt whose outcome was never recorded may have made one)."""

    mailbox: str
    event_id: str
    activity_id: str


@dataclass(frozen=True)
class MailboxState:
    """A mailbox's lane: who holds it, why it is paused, its request budget."""

    mailbox: str
    holder: str | None
    lease_until: datetime | None  # wall clock
    paused_until: datetime | None  # service clock
    reason: str | None  # throttled | budget | unreachable | unavailable
    code: str | None  # Graph's code while the mailbox is unavailable
    since: datetime | None  # unavailable since
    checks: int  # consecutive failed attempts (the backoff's exponent)
    budget: dict[str, int] = field(default_factory=dict)  # requests per minute (epoch minute)


@dataclass(frozen=True)
class Pause:
    """How a lane is left on release: None fields clear it (the mailbox works)."""

    until: datetime | None = None
    reason: str | None = None
    code: str | None = None
    since: datetime | None = None
    checks: int = 0


class SyncState(SqlView):
    name = "calendar_sync"
    ddl = (
        "CREATE TABLE IF NOT EXISTS {t}entries ("
        " activity_id TEXT PRIMARY KEY, customer_id TEXT, owner TEXT, type TEXT, channel TEXT,"
        " subject TEXT, agenda TEXT, starts_at TEXT, ends_at TEXT, lifecycle TEXT,"
        " view_version BIGINT, version BIGINT NOT NULL, mailbox TEXT NOT NULL, event_id TEXT,"
        " change_key TEXT,"
        " status TEXT NOT NULL, error TEXT, error_version BIGINT, shown_name TEXT,"
        " revision BIGINT NOT NULL, published BIGINT NOT NULL, updated_at TEXT NOT NULL,"
        " due_at TEXT, create_tried BIGINT NOT NULL DEFAULT 1)",
        "CREATE TABLE IF NOT EXISTS {t}customers ("
        " customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, version BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {t}mailboxes ("
        " mailbox TEXT PRIMARY KEY, holder TEXT, lease_until TEXT, paused_until TEXT,"
        " reason TEXT, code TEXT, since TEXT, checks BIGINT NOT NULL, budget TEXT NOT NULL,"
        " updated_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {t}leftovers ("
        " mailbox TEXT NOT NULL, event_id TEXT NOT NULL, activity_id TEXT NOT NULL,"
        " since TEXT NOT NULL, PRIMARY KEY (mailbox, activity_id, event_id))",
        *(
            f"CREATE INDEX IF NOT EXISTS calendar_sync_{n} ON {{t}}{on}"
            for n, on in _INDEXES.items()
        ),
    )

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        on_saved: Callable[[], None] | None = None,
        on_due: Callable[[str | None], None] | None = None,
    ) -> None:
        """`on_saved`: after any change the status relay or a lane may care about;
        `on_due(mailbox)`: after a save that left a row due in that mailbox (a hint for this
        process's lanes; other processes hear it through `due_channel` on PostgreSQL), and
        `on_due(None)` after a change that may make work due in mailboxes it does not name
        (an operator's retry, new customer names, a pause that will end)."""
        super().__init__(env)
        self._schema = env.get("POSTGRES_SCHEMA") or "public"
        self._on_saved = on_saved or (lambda: None)
        self._on_due: Callable[[str | None], None] = on_due or (lambda _mailbox: None)
        self.due_channel = due_channel(self._schema)
        self._migrate()

    def _migrate(self) -> None:
        """Tables made before the lanes lack `due_at` (NULL: nothing to do); tables made
        before `create_tried` get it as 1 on every row: an older version may have tried a
        create whose outcome was never recorded, so those rows always look first."""
        if self.is_postgres:
            rows = self.query(
                "SELECT column_name AS name FROM information_schema.columns"
                " WHERE table_schema = ? AND table_name = ?",
                (self._schema, f"{self.name}_entries"),
            )
        else:
            rows = self.query("SELECT name FROM pragma_table_info(?)", (f"{self.name}_entries",))
        with self.transaction() as tx:
            columns = {str(r["name"]) for r in rows}
            if "due_at" not in columns:
                tx.execute("ALTER TABLE {t}entries ADD COLUMN due_at TEXT")
            if "create_tried" not in columns:
                tx.execute(
                    "ALTER TABLE {t}entries ADD COLUMN create_tried BIGINT NOT NULL DEFAULT 1"
                )
            tx.execute(_DUE_INDEX)

    # --- activity rows --------------------------------------------------------------------
    def get(self, activity_id: str) -> SyncRecord | None:
        row = self.query_one(_SELECT + " WHERE activity_id = ?", (activity_id,))
        return _record(row) if row is not None else None

    def inbound(
        self, delivery: Delivery, activity_id: str, customer_id: str, mailbox: str = ""
    ) -> Inbound:
        """The tracking position, the row, the customer's name and whether the target mailbox
        is unavailable, in one round trip.

        Reading them together is no weaker than a transaction each: every one is checked
        again by the commit (tracking uniqueness, the row's revision).
        """
        row = self.read_one(
            f"SELECT p.seen, c.name AS customer_name, m.code AS mailbox_code, {_ENTRY_COLUMNS}"  # noqa: S608
            f" FROM (SELECT {self.position_sql()} AS seen) p"
            " LEFT JOIN {t}entries e ON e.activity_id = ?"
            " LEFT JOIN {t}customers c ON c.customer_id = ?"
            " LEFT JOIN {t}mailboxes m ON m.mailbox = ?",
            (self.tracking_name(delivery.tracking_name), activity_id, customer_id, mailbox),
        )
        assert row is not None  # the derived table always has its one row
        seen = row["seen"] is not None and delivery.offset <= int(row["seen"])
        record = _record(row) if row["activity_id"] is not None else None
        name, code = row["customer_name"], row["mailbox_code"]
        return Inbound(
            seen,
            record,
            str(name) if name is not None else None,
            str(code) if code is not None else None,
        )

    def for_owner(self, owner: str) -> list[SyncRecord]:
        """Rows whose activity belongs to `owner`, or whose entry is in their calendar."""
        rows = self.query(
            _SELECT + " WHERE owner = ? OR mailbox = ? ORDER BY activity_id",
            (owner, owner),
        )
        return [_record(r) for r in rows]

    def save(
        self,
        record: SyncRecord,
        *,
        expected_revision: int,
        track: Delivery | None = None,
        leftover: Leftover | None = None,
        settled: Iterable[tuple[str, str]] = (),
    ) -> bool:
        """Write the row (and the tracking position) if nobody changed it since it was read.

        `leftover`: an entry the activity left behind in another mailbox, to delete there.
        `settled`: (mailbox, event id) pairs that are the activity's entry again, so no
        leftover of theirs may delete them.

        False: another writer got there first; nothing was written. A tracking position
        that is already recorded raises eventsourcing's IntegrityError (another consumer
        applied this message): nothing is written then either.
        """
        values = _values(record, expected_revision + 1)
        due = [record.owner] if record.due_at is not None else []
        if leftover is not None:
            due.append(leftover.mailbox)
        # On PostgreSQL every mailbox made due is NOTIFYed (delivered on commit to every
        # process LISTENing: the lanes of other pods hear of their work without polling); the
        # row's own in the statement that writes it, which costs no round trip.
        notify: tuple[Any, ...] = ()
        returning = ""
        if self.is_postgres and record.due_at is not None:
            notify, returning = (self.due_channel, record.owner), ", pg_notify(?, ?)"
        try:
            with self.transaction() as tx:
                if expected_revision == 0:
                    tx.execute(_INSERT + returning, (*values, *notify))
                else:
                    tx.execute(
                        _UPDATE + returning,
                        (*values[1:], record.activity_id, expected_revision, *notify),
                    )
                if tx.fetchone() is None:
                    raise _Conflict
                if track is not None:
                    tx.track(track.tracking_name, track.offset)
                if leftover is not None:
                    tx.execute(
                        "INSERT INTO {t}leftovers VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (mailbox, activity_id, event_id) DO NOTHING",
                        (
                            leftover.mailbox,
                            leftover.event_id,
                            leftover.activity_id,
                            iso(record.updated_at),
                        ),
                    )
                for mailbox, event_id in settled:
                    tx.execute(
                        "DELETE FROM {t}leftovers WHERE mailbox = ? AND event_id = ?",
                        (mailbox, event_id),
                    )
                if leftover is not None and self.is_postgres:
                    tx.execute("SELECT pg_notify(?, ?)", (self.due_channel, leftover.mailbox))
        except _Conflict:
            return False
        self._on_saved()
        for mailbox in due:
            self._on_due(mailbox)
        return True

    def track(self, delivery: Delivery) -> None:
        """Record a message that changes no row (stale, or nothing the calendar shows)."""
        with self.transaction() as tx:
            tx.track(delivery.tracking_name, delivery.offset)

    def mark_due(self, activity_id: str, at: datetime) -> bool:
        """Ask the lanes to write the row's view again (an operator's retry)."""
        with self.transaction() as tx:
            tx.execute(
                "UPDATE {t}entries SET due_at = ?, revision = revision + 1, updated_at = ?"
                " WHERE activity_id = ? AND view_version IS NOT NULL RETURNING activity_id",
                (iso(at), iso(at), activity_id),
            )
            found = tx.fetchone() is not None
        self._on_saved()
        self._on_due(None)
        return found

    # --- the lanes: due work per mailbox ----------------------------------------------------
    def due_lanes(
        self, now: datetime, wall: datetime, limit: int = 20, *, ours: str = ""
    ) -> list[str]:
        """Mailboxes with work due, neither paused nor held by a lane (but those `ours`
        holds, which no other holder can be working), most overdue first."""
        rows = self.query(
            "SELECT w.mailbox, MIN(w.due) AS due FROM ("
            " SELECT owner AS mailbox, due_at AS due FROM {t}entries"
            "  WHERE due_at IS NOT NULL AND due_at <= ?"
            " UNION ALL SELECT mailbox, since AS due FROM {t}leftovers"
            ") w LEFT JOIN {t}mailboxes m ON m.mailbox = w.mailbox"
            " WHERE m.mailbox IS NULL OR m.holder = ?"
            "  OR ((m.lease_until IS NULL OR m.lease_until < ?)"
            "  AND (m.paused_until IS NULL OR m.paused_until <= ?))"
            " GROUP BY w.mailbox ORDER BY 2, 1 LIMIT ?",
            (iso(now), ours, iso(wall), iso(now), limit),
        )
        return [str(r["mailbox"]) for r in rows]

    def next_due(self, now: datetime) -> datetime | None:
        """When the earliest work after `now` falls due: a row due later, or a pause that
        ends (for a lane's idle wait). Work due already is not it: it is either free, and
        found by the poll that asks this, or held by a lane, or waits for a pause to end."""
        row = self.query_one(
            "SELECT MIN(d) AS d FROM (SELECT MIN(due_at) AS d FROM {t}entries"
            " WHERE due_at > ? UNION ALL SELECT MIN(paused_until) AS d"
            " FROM {t}mailboxes WHERE paused_until > ?) x",
            (iso(now), iso(now)),
        )
        return parse_iso(row["d"]) if row is not None and row["d"] is not None else None

    def claim(
        self, mailbox: str, holder: str, *, lease_until: datetime, wall: datetime, now: datetime
    ) -> MailboxState | None:
        """Take the mailbox's lane unless another holder's lease runs or it is paused."""
        with self.transaction() as tx:
            tx.execute(
                f"INSERT INTO {{t}}mailboxes ({_MAILBOX_COLUMNS})"  # noqa: S608
                " VALUES (?, ?, ?, NULL, NULL, NULL, NULL, 0, '{}', ?)"
                " ON CONFLICT (mailbox) DO UPDATE SET holder = excluded.holder,"
                " lease_until = excluded.lease_until, updated_at = excluded.updated_at"
                " WHERE ({t}mailboxes.lease_until IS NULL OR {t}mailboxes.lease_until < ?)"
                " AND ({t}mailboxes.paused_until IS NULL OR {t}mailboxes.paused_until <= ?)"
                f" RETURNING {_MAILBOX_COLUMNS}",
                (mailbox, holder, iso(lease_until), iso(now), iso(wall), iso(now)),
            )
            row = tx.fetchone()
        return _mailbox(row) if row is not None else None

    def renew(self, mailbox: str, holder: str, lease_until: datetime) -> bool:
        """Extend the lease; False when it was lost (expired and taken): stop at once."""
        with self.transaction() as tx:
            tx.execute(
                "UPDATE {t}mailboxes SET lease_until = ? WHERE mailbox = ? AND holder = ?"
                " RETURNING mailbox",
                (iso(lease_until), mailbox, holder),
            )
            return tx.fetchone() is not None

    def release(
        self,
        mailbox: str,
        holder: str,
        *,
        budget: Mapping[str, int],
        pause: Pause,
        now: datetime,
    ) -> None:
        """Give the lane back, with its budget and how it is left (paused or working)."""
        with self.transaction() as tx:
            tx.execute(
                "UPDATE {t}mailboxes SET holder = NULL, lease_until = NULL, paused_until = ?,"
                " reason = ?, code = ?, since = ?, checks = ?, budget = ?, updated_at = ?"
                " WHERE mailbox = ? AND holder = ?",
                (
                    iso(pause.until),
                    pause.reason,
                    pause.code,
                    iso(pause.since),
                    pause.checks,
                    json.dumps(dict(budget), sort_keys=True),
                    iso(now),
                    mailbox,
                    holder,
                ),
            )
        if pause.until is not None:
            self._on_due(None)  # a lane idle until the earliest due time should look again

    def due_rows(self, mailbox: str, now: datetime, limit: int = 50) -> list[str]:
        rows = self.query(
            "SELECT activity_id FROM {t}entries WHERE owner = ? AND due_at IS NOT NULL"
            " AND due_at <= ? ORDER BY due_at, activity_id LIMIT ?",
            (mailbox, iso(now), limit),
        )
        return [str(r["activity_id"]) for r in rows]

    def take_due(self, mailbox: str, now: datetime, limit: int = 50) -> list[Due]:
        """The mailbox's due rows, oldest due first, each marked as taken up by a lane before
        anything is sent for it, with its customer's name: one statement.

        The mark (`create_tried`, never reset) is what lets a first create skip the look for
        an existing event: a row taken up for the first time ever was never the subject of a
        create, so nothing tagged with it can exist. Only the holder of the mailbox's lane
        calls this; writers that may create outside a lane mark first (`mark_tried`).
        """
        # Column names are ours (no input reaches this string).
        statement = (
            "UPDATE {t}entries SET create_tried = create_tried + 1 WHERE activity_id IN ("  # noqa: S608
            " SELECT activity_id FROM {t}entries WHERE owner = ? AND due_at IS NOT NULL"
            " AND due_at <= ? ORDER BY due_at, activity_id LIMIT ?)"
            f" RETURNING {_COLUMNS}, create_tried,"
            " (SELECT c.name FROM {t}customers c"
            "  WHERE c.customer_id = {t}entries.customer_id) AS customer_name"
        )
        rows = self._write_returning(statement, (mailbox, iso(now), limit))
        taken = [
            Due(
                _record(r),
                first=int(r["create_tried"]) == 1,
                customer_name=str(r["customer_name"]) if r["customer_name"] is not None else None,
            )
            for r in rows
        ]
        # RETURNING promises no order.
        taken.sort(key=lambda d: (d.record.due_at or now, d.record.activity_id))
        return taken

    def mark_tried(self, activity_id: str) -> None:
        """Note that a create of the activity may be sent (see `take_due`)."""
        self._write_returning(
            "UPDATE {t}entries SET create_tried = create_tried + 1 WHERE activity_id = ?"
            " RETURNING activity_id",
            (activity_id,),
        )

    def _read_all(self, statement: str, params: tuple[Any, ...]) -> list[Row]:
        """One reading statement: on PostgreSQL in one round trip (autocommit; a single
        statement sees one snapshot either way)."""
        if not self.is_postgres:
            return self.query(statement, params)
        return self._write_returning(statement, params)

    def _write_returning(self, statement: str, params: tuple[Any, ...]) -> list[Row]:
        """One writing statement, committed, in one round trip on PostgreSQL (autocommit:
        no BEGIN and COMMIT of their own; a single statement is atomic either way)."""
        if not self.is_postgres:
            with self.transaction() as tx:
                tx.execute(statement, params)
                return tx.fetchall()
        with self._datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(self.adapt(statement), params, prepare=True)
            return [dict(r) for r in cursor.fetchall()]

    def leftovers(self, mailbox: str, limit: int = 50) -> list[Leftover]:
        rows = self._read_all(
            "SELECT mailbox, event_id, activity_id FROM {t}leftovers WHERE mailbox = ?"
            " ORDER BY since, event_id LIMIT ?",
            (mailbox, limit),
        )
        return [
            Leftover(str(r["mailbox"]), str(r["event_id"]), str(r["activity_id"])) for r in rows
        ]

    def drop_leftover(self, leftover: Leftover) -> None:
        with self.transaction() as tx:
            tx.execute(
                "DELETE FROM {t}leftovers WHERE mailbox = ? AND activity_id = ? AND event_id = ?",
                (leftover.mailbox, leftover.activity_id, leftover.event_id),
            )

    def mark_unavailable(self, mailbox: str, code: str, at: datetime) -> int:
        """The mailbox's due rows show `mailbox_unavailable` and its code; they stay due."""
        status = SyncStatus.MAILBOX_UNAVAILABLE.value
        with self.transaction() as tx:
            tx.execute(
                "UPDATE {t}entries SET status = ?, error = ?, error_version = view_version,"
                " revision = revision + 1, updated_at = ? WHERE owner = ? AND due_at IS NOT NULL"
                " AND (status <> ? OR error IS NULL OR error <> ?) RETURNING activity_id",
                (status, code, iso(at), mailbox, status, code),
            )
            changed = len(tx.fetchall())
        if changed:
            self._on_saved()
        return changed

    def mailbox(self, mailbox: str) -> MailboxState | None:
        row = self.query_one(
            f"SELECT {_MAILBOX_COLUMNS} FROM {{t}}mailboxes WHERE mailbox = ?",  # noqa: S608
            (mailbox,),
        )
        return _mailbox(row) if row is not None else None

    def troubled_mailboxes(self) -> list[MailboxState]:
        """Mailboxes paused or unavailable (for operators)."""
        rows = self.query(
            f"SELECT {_MAILBOX_COLUMNS} FROM {{t}}mailboxes"  # noqa: S608
            " WHERE code IS NOT NULL OR paused_until IS NOT NULL ORDER BY mailbox"
        )
        return [_mailbox(r) for r in rows]

    def unavailable_counts(self) -> dict[str, int]:
        rows = self.query(
            "SELECT code, COUNT(*) AS n FROM {t}mailboxes WHERE code IS NOT NULL GROUP BY code"
        )
        return {str(r["code"]): int(r["n"]) for r in rows}

    # --- customer names -------------------------------------------------------------------
    def customer_name(self, customer_id: str) -> str | None:
        row = self.query_one("SELECT name FROM {t}customers WHERE customer_id = ?", (customer_id,))
        return str(row["name"]) if row is not None else None

    def apply_customer(
        self,
        customer_id: str,
        snapshot: CustomerSnapshot | None,
        delivery: Delivery,
        *,
        now: datetime | None = None,
    ) -> int:
        """Upsert (None: forget) a customer's name with the partition's tracking position, and
        mark due (with `now`) the live entries that show another name; returns how many.

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
            marked = self._mark_stale_names(tx, customer_id, now) if now is not None else 0
        if marked:
            self._on_saved()
            self._on_due(None)
        return marked

    def mark_stale_names(self, now: datetime, customer_id: str | None = None) -> int:
        """Mark due every live entry whose subject shows another name than the current one."""
        with self.transaction() as tx:
            marked = self._mark_stale_names(tx, customer_id, now)
        if marked:
            self._on_saved()
            self._on_due(None)
        return marked

    def _mark_stale_names(self, tx: ViewTransaction, customer_id: str | None, now: datetime) -> int:
        statement = (
            "UPDATE {t}entries SET due_at = ?, revision = revision + 1, updated_at = ?"
            " WHERE status = ? AND due_at IS NULL AND EXISTS (SELECT 1 FROM {t}customers c"
            "  WHERE c.customer_id = {t}entries.customer_id"
            "  AND ({t}entries.shown_name IS NULL OR {t}entries.shown_name <> c.name))"
        )
        params: tuple[Any, ...] = (iso(now), iso(now), SyncStatus.SYNCED.value)
        if customer_id is not None:
            statement += " AND customer_id = ?"
            params += (customer_id,)
        tx.execute(statement + " RETURNING activity_id", params)
        return len(tx.fetchall())

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
        iso(record.due_at),
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
        due_at=parse_iso(row["due_at"]),
    )


def _mailbox(row: Row) -> MailboxState:
    return MailboxState(
        mailbox=str(row["mailbox"]),
        holder=row["holder"],
        lease_until=parse_iso(row["lease_until"]),
        paused_until=parse_iso(row["paused_until"]),
        reason=row["reason"],
        code=row["code"],
        since=parse_iso(row["since"]),
        checks=int(row["checks"]),
        budget={str(k): int(v) for k, v in json.loads(row["budget"] or "{}").items()},
    )
