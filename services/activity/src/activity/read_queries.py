"""The activity read model's tables, the queries the API asks of them, and their rows.

`projections` folds the event log into these tables; this module is all the API needs to
read them. Every list is keyset-paged: the cursor is an opaque, url-safe token of the last
row's sort key, so a page never repeats or skips a row while others write.

Times are ISO text (`crm_platform.sqlview.iso`), so they sort and compare as times on both
databases; `registered` is a BOOLEAN, which SQLite hands back as 0/1.

Statements are assembled from constant table and column names only; every value is a bound
parameter (hence the `noqa: S608`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from crm_platform.sqlview import SqlView, iso, parse_iso

from activity.consumers import CustomerDirectory
from activity.domain import PLANNED

DEFAULT_PAGE = 50
MAX_PAGE = 500

ACTIVITY_COLUMNS: tuple[str, ...] = (
    *("activity_id", "customer_id", "owner", "type", "channel", "subject", "status"),
    *("registered", "starts_at", "ends_at", "move_count", "created_at", "closed_at"),
    *("version", "updated_at"),
)
TIMELINE_COLUMNS: tuple[str, ...] = (
    *("customer_id", "activity_id", "version", "seq", "at", "event", "type", "actor"),
    "summary",
)
MOVE_COLUMNS: tuple[str, ...] = (
    *("activity_id", "version", "owner", "reason", "moved_at", "from_starts_at"),
    *("to_starts_at", "actor"),
)
GAP_COLUMNS: tuple[str, ...] = (
    *("customer_id", "since", "why", "segment", "owner", "activity_id", "opened_at"),
    "version",
)
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # table → (its columns, its primary key)
    "activities": (ACTIVITY_COLUMNS, ("activity_id",)),
    "timeline": (TIMELINE_COLUMNS, ("activity_id", "version")),
    "moves": (MOVE_COLUMNS, ("activity_id", "version")),
    "gaps": (GAP_COLUMNS, ("customer_id",)),
}
TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS {t}activities ("
    " activity_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, owner TEXT NOT NULL,"
    " type TEXT NOT NULL, channel TEXT NOT NULL, subject TEXT, status TEXT NOT NULL,"
    " registered BOOLEAN NOT NULL, starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,"
    " move_count INTEGER NOT NULL, created_at TEXT NOT NULL, closed_at TEXT,"
    " version BIGINT NOT NULL, updated_at TEXT NOT NULL)",
    # seq: the event's notification id, the customer timeline's order. The key (activity_id,
    # version) of timeline and moves is a unique index, so a rebuild can add it at the end.
    "CREATE TABLE IF NOT EXISTS {t}timeline ("
    " customer_id TEXT NOT NULL, activity_id TEXT NOT NULL, version BIGINT NOT NULL,"
    " seq BIGINT NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL, type TEXT NOT NULL,"
    " actor TEXT NOT NULL, summary TEXT NOT NULL)",
    # The R8 gaps open now, one per customer; version: the customer file's.
    "CREATE TABLE IF NOT EXISTS {t}gaps ("
    " customer_id TEXT PRIMARY KEY, since TEXT NOT NULL, why TEXT NOT NULL,"
    " segment TEXT NOT NULL, owner TEXT, activity_id TEXT, opened_at TEXT NOT NULL,"
    " version BIGINT NOT NULL)",
    # owner: who owned the activity when it was moved
    "CREATE TABLE IF NOT EXISTS {t}moves ("
    " activity_id TEXT NOT NULL, version BIGINT NOT NULL, owner TEXT NOT NULL,"
    " reason TEXT NOT NULL, moved_at TEXT NOT NULL, from_starts_at TEXT NOT NULL,"
    " to_starts_at TEXT NOT NULL, actor TEXT NOT NULL)",
)
_UNIQUE = {
    "timeline_key": "timeline (activity_id, version)",
    "moves_key": "moves (activity_id, version)",
}
_INDEXES = {
    "activities_owner": "activities (owner, starts_at, activity_id)",
    "activities_customer": "activities (customer_id, starts_at)",
    "activities_status": "activities (status, starts_at)",
    "activities_start": "activities (starts_at, activity_id)",
    "timeline_customer": "timeline (customer_id, seq)",
    "moves_moved_at": "moves (moved_at)",
}


def index_ddl(view: str) -> tuple[str, ...]:
    # Index names carry the view's name bare: PostgreSQL puts an index in its table's schema
    # and refuses a schema-qualified index name, so `{t}` cannot be used for them.
    return tuple(
        f"CREATE {kind} IF NOT EXISTS {view}_{name} ON {{t}}{on}"
        for kind, indexes in (("UNIQUE INDEX", _UNIQUE), ("INDEX", _INDEXES))
        for name, on in indexes.items()
    )


class InvalidCursor(ValueError):
    """A cursor this read model did not hand out (the API answers 400)."""


@dataclass(frozen=True, slots=True)
class ActivityRow:
    activity_id: UUID
    customer_id: str
    owner: str
    type: str
    channel: str
    subject: str | None
    status: str
    registered: bool
    starts_at: datetime
    ends_at: datetime
    move_count: int
    created_at: datetime
    closed_at: datetime | None
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ActivityRow:
        values = {c: row[c] for c in ACTIVITY_COLUMNS}
        for column in ("starts_at", "ends_at", "created_at", "updated_at"):
            values[column] = _time(row[column])
        values["activity_id"] = UUID(row["activity_id"])
        values["registered"] = bool(row["registered"])
        values["closed_at"] = parse_iso(row["closed_at"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    customer_id: str
    activity_id: UUID
    version: int
    at: datetime
    event: str
    type: str
    actor: str
    summary: str


@dataclass(frozen=True, slots=True)
class Gap:
    """A prioritized customer without a future activity (R8), since when and why."""

    customer_id: str
    name: str | None  # None while the directory has not heard of the customer (yet)
    owner: str | None  # the customer's consultant, as the registry has it now
    segment: str  # as the registry has it now (the segment when it opened, failing that)
    since: datetime
    why: str  # GapOpenedBecause
    activity_id: UUID | None  # the overdue activity, when that is why


@dataclass(frozen=True, slots=True)
class OwnerMoves:
    owner: str
    moves: int  # moves in the period while this consultant owned the activity
    by_reason: dict[str, int]
    planned: int  # activities this consultant owns that were planned in the period
    moved: int  # of those, how many have been moved at least once (by now)
    moved_share: float | None  # moved / planned; None when nothing was planned


@dataclass(frozen=True, slots=True)
class MoveStats:
    moved_from: datetime | None
    moved_to: datetime | None
    total: int
    by_reason: dict[str, int]
    owners: list[OwnerMoves]


def encode_cursor(key: Sequence[str | int]) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    """The key inside `cursor`, checked to hold values of `kinds` (else InvalidCursor)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor("the cursor is not one this list handed out") from None
    if (
        not isinstance(key, list)
        or len(key) != len(kinds)
        or not all(type(v) is k for v, k in zip(key, kinds, strict=True))
        # A forged cursor must not smuggle in what PostgreSQL cannot compare (a NUL).
        or any(isinstance(v, str) and "\x00" in v for v in key)
        or any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in key)
    ):
        raise InvalidCursor("the cursor is not one this list handed out")
    return key


def _time(text: str) -> datetime:
    moment: datetime | None = parse_iso(text)
    assert moment is not None
    return moment


def _range(
    column: str, start: datetime | None, end: datetime | None
) -> tuple[list[str], list[Any]]:
    """Conditions for `start <= column < end`, either end open."""
    where: list[str] = []
    params: list[Any] = []
    if start is not None:
        where.append(f"{column} >= ?")
        params.append(iso(start))
    if end is not None:
        where.append(f"{column} < ?")
        params.append(iso(end))
    return where, params


def _where(conditions: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def _page(limit: int) -> int:
    # Bounded so one request cannot pull a whole table through the API.
    return max(1, min(limit, MAX_PAGE))


class ActivityQueries(SqlView):  # type: ignore[misc, unused-ignore]  # crm_platform: no py.typed
    """Read side of `projections.ActivityReadModel`: the tables are created there."""

    def list_activities(
        self,
        *,
        owner: str | None = None,
        customer_id: str | None = None,
        status: str | None = None,
        type: str | None = None,
        starts_from: datetime | None = None,
        starts_to: datetime | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> tuple[list[ActivityRow], str | None]:
        """Activities by start time, then id; `starts_from` inclusive, `starts_to` exclusive.

        Returns a page and the cursor of the next one (None on the last page).
        """
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("owner", owner),
            ("customer_id", customer_id),
            ("status", status),
            ("type", type),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        span, span_params = _range("starts_at", starts_from, starts_to)
        where += span
        params += span_params
        if cursor is not None:
            # A row-value comparison, so the (…, starts_at, activity_id) indexes serve it.
            where.append("(starts_at, activity_id) > (?, ?)")
            params.extend(decode_cursor(cursor, (str, str)))
        size = _page(limit)
        rows = self.query(
            f"SELECT {', '.join(ACTIVITY_COLUMNS)} FROM {{t}}activities"  # noqa: S608
            + _where(where)
            + " ORDER BY starts_at, activity_id LIMIT ?",
            (*params, size + 1),
        )
        page = [ActivityRow.from_row(r) for r in rows[:size]]
        more = len(rows) > size
        last = rows[size - 1] if more else None
        return page, encode_cursor((last["starts_at"], last["activity_id"])) if last else None

    def overdue(
        self,
        now: datetime,
        *,
        owner: str | None = None,
        customer_id: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> tuple[list[ActivityRow], str | None]:
        """Planned activities whose start has passed, oldest first: held but not recorded,
        or not held and not moved (R1)."""
        return self.list_activities(
            owner=owner,
            customer_id=customer_id,
            status=PLANNED,
            starts_to=now,
            cursor=cursor,
            limit=limit,
        )

    def timeline(
        self, customer_id: str, *, cursor: str | None = None, limit: int = DEFAULT_PAGE
    ) -> tuple[list[TimelineEntry], str | None]:
        """What happened with a customer's activities, newest first.

        Ordered by position in the event log, not by `at`: one save (completing an activity
        and planning the next) gives several entries the same time, and the log still says
        which came first.
        """
        params: list[Any] = [customer_id]
        after = ""
        if cursor is not None:
            after = " AND seq < ?"
            params.extend(decode_cursor(cursor, (int,)))
        size = _page(limit)
        rows = self.query(
            "SELECT * FROM {t}timeline WHERE customer_id = ?"  # noqa: S608
            + after
            + " ORDER BY seq DESC LIMIT ?",
            (*params, size + 1),
        )
        page = [
            TimelineEntry(
                customer_id=r["customer_id"],
                activity_id=UUID(r["activity_id"]),
                version=int(r["version"]),
                at=_time(r["at"]),
                event=r["event"],
                type=r["type"],
                actor=r["actor"],
                summary=r["summary"],
            )
            for r in rows[:size]
        ]
        more = len(rows) > size
        return page, encode_cursor((int(rows[size - 1]["seq"]),)) if more else None

    def overlapping(
        self, owner: str, starts_at: datetime, ends_at: datetime, besides: UUID
    ) -> list[UUID]:
        """The owner's other planned activities that share some of [starts_at, ends_at)."""
        rows = self.query(
            "SELECT activity_id FROM {t}activities WHERE owner = ? AND status = ?"
            " AND starts_at < ? AND ends_at > ? AND activity_id <> ?"
            " ORDER BY starts_at, activity_id LIMIT 20",
            (owner, PLANNED, iso(ends_at), iso(starts_at), str(besides)),
        )
        return [UUID(r["activity_id"]) for r in rows]

    def gaps(self, *, owner: str | None = None, segment: str | None = None) -> list[Gap]:
        """The open R8 gaps, oldest first, by the customer's current owner and segment."""
        directory = self._sibling_table(CustomerDirectory.name, "customers")
        where, params = [], []
        if owner is not None:
            where.append("COALESCE(c.owner, g.owner) = ?")
            params.append(owner)
        if segment is not None:
            where.append("COALESCE(c.segment, g.segment) = ?")
            params.append(segment)
        rows = self.query(
            "SELECT g.customer_id, c.name, COALESCE(c.owner, g.owner) AS owner,"  # noqa: S608
            " COALESCE(c.segment, g.segment) AS segment, g.since, g.why, g.activity_id"
            f" FROM {{t}}gaps g LEFT JOIN {directory} c ON c.customer_id = g.customer_id"
            + _where(where)
            + " ORDER BY g.since, g.customer_id",
            params,
        )
        return [
            Gap(
                customer_id=r["customer_id"],
                name=r["name"],
                owner=r["owner"],
                segment=r["segment"],
                since=_time(r["since"]),
                why=r["why"],
                activity_id=UUID(r["activity_id"]) if r["activity_id"] else None,
            )
            for r in rows
        ]

    def gap_candidates(self, now: datetime) -> list[str]:
        """Customers whose R8 gap may have to open or close as of `now`, by these tables:
        prioritized ones with no planned activity after `now` and no gap yet (an overdue
        last activity, a newly prioritized customer), and gaps whose customer has a future
        activity again or is no longer prioritized. The customer's file decides."""
        directory = self._sibling_table(CustomerDirectory.name, "customers")
        # `{c}` is filled with the outer query's alias; `{{t}}` stays for `query` to fill.
        future = (
            "EXISTS (SELECT 1 FROM {{t}}activities a WHERE a.customer_id = {c}.customer_id"
            " AND a.status = ? AND a.starts_at > ?)"
        )
        at = iso(now)
        rows = self.query(
            f"SELECT c.customer_id FROM {directory} c WHERE c.prioritized = ?"  # noqa: S608
            f" AND NOT {future.format(c='c')}"
            " AND NOT EXISTS (SELECT 1 FROM {t}gaps g WHERE g.customer_id = c.customer_id)"
            " UNION SELECT g.customer_id FROM {t}gaps g"
            f" LEFT JOIN {directory} c ON c.customer_id = g.customer_id"
            f" WHERE c.customer_id IS NULL OR c.prioritized = ? OR {future.format(c='g')}",
            (True, PLANNED, at, False, PLANNED, at),
        )
        return sorted(r["customer_id"] for r in rows)

    def move_stats(
        self, moved_from: datetime | None = None, moved_to: datetime | None = None
    ) -> MoveStats:
        """How often work gets pushed: moves in [moved_from, moved_to) per consultant and reason.

        A move counts for whoever owned the activity when it was moved. Beside it, per current
        owner: the activities planned (not registered) in the period and how many of them
        have been moved at least once so far.
        """
        moved, params = _range("moved_at", moved_from, moved_to)
        created, _ = _range("created_at", moved_from, moved_to)
        counts = self.query(
            "SELECT owner, reason, COUNT(*) AS n FROM {t}moves"  # noqa: S608
            + _where(moved)
            + " GROUP BY owner, reason",
            params,
        )
        planned = self.query(
            "SELECT owner, COUNT(*) AS planned,"  # noqa: S608
            " SUM(CASE WHEN move_count > 0 THEN 1 ELSE 0 END) AS moved FROM {t}activities"
            + _where(["registered = ?", *created])
            + " GROUP BY owner",
            (False, *params),
        )
        by_owner: dict[str, dict[str, int]] = {}
        for r in counts:
            by_owner.setdefault(r["owner"], {})[r["reason"]] = int(r["n"])
        shares = {r["owner"]: (int(r["planned"]), int(r["moved"] or 0)) for r in planned}
        owners = []
        for owner in sorted(by_owner.keys() | shares.keys()):
            reasons = by_owner.get(owner, {})
            planned_, moved_ = shares.get(owner, (0, 0))
            owners.append(
                OwnerMoves(
                    owner=owner,
                    moves=sum(reasons.values()),
                    by_reason=dict(sorted(reasons.items())),
                    planned=planned_,
                    moved=moved_,
                    moved_share=moved_ / planned_ if planned_ else None,
                )
            )
        by_reason: dict[str, int] = {}
        for r in counts:
            by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + int(r["n"])
        return MoveStats(
            moved_from=moved_from,
            moved_to=moved_to,
            total=sum(by_reason.values()),
            by_reason=dict(sorted(by_reason.items())),
            owners=owners,
        )

    def _sibling_table(self, view_name: str, short_name: str) -> str:
        """Another view's table in the same database or schema (e.g. the customer directory)."""
        own: str = self.table(short_name)
        return own[: len(own) - len(f"{self.name}_{short_name}")] + f"{view_name}_{short_name}"
