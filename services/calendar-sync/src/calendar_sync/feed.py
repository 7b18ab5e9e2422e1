"""The embedded calendar: entries in a table that the iCalendar feed (ics.py) reads.

`FeedCalendar` is the second adapter of the calendar port. Its "calendar" is the
`calendar_sync_feed_events` table; an entry there is a VEVENT of the owner's feed. Nobody
can delete an entry from a subscribed feed in Outlook, so `update` never reports one gone.

Each entry keeps a SEQUENCE (RFC 5545 §3.8.7.4): 0 when created, one more on every change
of what it shows; a repeated write of the same content (a redelivered message) leaves it,
so a client never sees a revision that is not one.

Feed tokens: Outlook subscribes to a URL and cannot send headers, so an owner's feed can
also be read with a secret token in the URL. Only its SHA-256 is stored (a leaked database
does not leak working URLs) and it is compared in constant time; rotating it invalidates
the old URL at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from crm_platform.sqlview import Row, SqlView, iso, parse_iso

from calendar_sync.calendar import Placed, Remote
from calendar_sync.domain import CalendarEntry

UID_DOMAIN = "calendar-sync.crm"
# Compared against when the owner has no token, so a miss costs what a hit costs.
_NO_TOKEN_HASH = hashlib.sha256(b"no token has this hash").hexdigest()


@dataclass(frozen=True)
class FeedEntry:
    mailbox: str
    activity_id: str
    uid: str
    sequence: int
    entry: CalendarEntry
    change_key: str
    updated_at: datetime


def uid_for(activity_id: str) -> str:
    """Stable per activity (not per owner): a reassigned entry is the same meeting."""
    return f"{activity_id}@{UID_DOMAIN}"


class FeedStore(SqlView):
    name = "calendar_sync_feed"
    ddl = (
        "CREATE TABLE IF NOT EXISTS {t}events ("
        " mailbox TEXT NOT NULL, activity_id TEXT NOT NULL, uid TEXT NOT NULL,"
        " sequence BIGINT NOT NULL, change_key TEXT NOT NULL, content TEXT NOT NULL,"
        " starts_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        " PRIMARY KEY (mailbox, activity_id))",
        "CREATE TABLE IF NOT EXISTS {t}tokens ("
        " owner TEXT PRIMARY KEY, token_hash TEXT NOT NULL, rotated_at TEXT NOT NULL)",
    )

    def __init__(self, env: Mapping[str, str], *, clock: Callable[[], datetime]) -> None:
        super().__init__(env)
        self.clock = clock

    # --- entries --------------------------------------------------------------------------
    def put(self, mailbox: str, activity_id: str, entry: CalendarEntry) -> Placed:
        content = _content(entry)
        change_key = hashlib.sha256(content.encode()).hexdigest()[:24]
        with self.transaction() as tx:
            tx.execute(
                "SELECT sequence, change_key FROM {t}events WHERE mailbox = ? AND activity_id = ?",
                (mailbox, activity_id),
            )
            known = tx.fetchone()
            if known is not None and known["change_key"] == change_key:
                return Placed(uid_for(activity_id), change_key)  # same content: no revision
            sequence = int(known["sequence"]) + 1 if known is not None else 0
            tx.execute(
                "INSERT INTO {t}events VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (mailbox, activity_id) DO UPDATE SET sequence = excluded.sequence,"
                " change_key = excluded.change_key, content = excluded.content,"
                " starts_at = excluded.starts_at, updated_at = excluded.updated_at",
                (
                    mailbox,
                    activity_id,
                    uid_for(activity_id),
                    sequence,
                    change_key,
                    content,
                    iso(entry.start),
                    iso(self.clock()),
                ),
            )
        return Placed(uid_for(activity_id), change_key)

    def delete(self, mailbox: str, activity_id: str) -> None:
        with self.transaction() as tx:
            tx.execute(
                "DELETE FROM {t}events WHERE mailbox = ? AND activity_id = ?",
                (mailbox, activity_id),
            )

    def get(self, mailbox: str, activity_id: str) -> FeedEntry | None:
        row = self.query_one(
            "SELECT * FROM {t}events WHERE mailbox = ? AND activity_id = ?", (mailbox, activity_id)
        )
        return _feed_entry(row) if row is not None else None

    def entries(self, mailbox: str) -> list[FeedEntry]:
        rows = self.query(
            "SELECT * FROM {t}events WHERE mailbox = ? ORDER BY starts_at, activity_id",
            (mailbox,),
        )
        return [_feed_entry(r) for r in rows]

    # --- tokens ---------------------------------------------------------------------------
    def rotate_token(self, owner: str) -> str:
        """A new secret for the owner's feed URL; the previous one stops working now."""
        token = secrets.token_urlsafe(32)
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO {t}tokens VALUES (?, ?, ?) ON CONFLICT (owner) DO UPDATE"
                " SET token_hash = excluded.token_hash, rotated_at = excluded.rotated_at",
                (owner, _hash(token), iso(self.clock())),
            )
        return token

    def token_matches(self, owner: str, token: str) -> bool:
        row = self.query_one("SELECT token_hash FROM {t}tokens WHERE owner = ?", (owner,))
        stored = str(row["token_hash"]) if row is not None else _NO_TOKEN_HASH
        return hmac.compare_digest(_hash(token), stored) and row is not None


class FeedCalendar:
    """The calendar port over the feed table: one entry per (owner, activity) by its key, so
    there are never duplicates to repair, and nobody can delete from a subscribed feed."""

    kind = "ics"

    def __init__(self, store: FeedStore) -> None:
        self.store = store

    def create(
        self,
        mailbox: str,
        activity_id: str,
        entry: CalendarEntry,
        *,
        version: int,
        keep: str | None = None,
        look: bool = True,
    ) -> Placed:
        return self.store.put(mailbox, activity_id, entry)  # keyed by activity: no look needed

    def update(
        self, mailbox: str, activity_id: str, event_id: str, entry: CalendarEntry, *, version: int
    ) -> Placed | None:
        return self.store.put(mailbox, activity_id, entry)

    def remove(self, mailbox: str, activity_id: str, event_id: str) -> None:
        self.store.delete(mailbox, activity_id)

    def fetch(self, mailbox: str, activity_id: str, event_id: str) -> Remote | None:
        found = self.store.get(mailbox, activity_id)
        return _remote(found) if found is not None else None

    def find_all(self, mailbox: str, activity_id: str) -> list[Remote]:
        found = self.store.get(mailbox, activity_id)
        return [_remote(found)] if found is not None else []

    def window(self, mailbox: str, start: datetime, end: datetime) -> list[Remote]:
        return [
            _remote(found)
            for found in self.store.entries(mailbox)
            if found.entry.start < end and found.entry.end > start
        ]


def _remote(found: FeedEntry) -> Remote:
    entry = found.entry
    return Remote(
        event_id=found.uid,
        change_key=found.change_key,
        subject=entry.subject,
        start=entry.start,
        end=entry.end,
        location=entry.location,
        categories=entry.categories,
        show_as=entry.show_as,
        activity_id=found.activity_id,
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _content(entry: CalendarEntry) -> str:
    return json.dumps(
        {
            "subject": entry.subject,
            "body": entry.body,
            "location": entry.location,
            "categories": list(entry.categories),
            "start": iso(entry.start),
            "end": iso(entry.end),
            "reminder_minutes": entry.reminder_minutes,
            "show_as": entry.show_as,
            "cancelled": entry.cancelled,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def _feed_entry(row: Row) -> FeedEntry:
    data = json.loads(row["content"])
    start, end, updated_at = (
        parse_iso(data["start"]),
        parse_iso(data["end"]),
        parse_iso(row["updated_at"]),
    )
    assert start is not None
    assert end is not None
    assert updated_at is not None
    return FeedEntry(
        mailbox=str(row["mailbox"]),
        activity_id=str(row["activity_id"]),
        uid=str(row["uid"]),
        sequence=int(row["sequence"]),
        entry=CalendarEntry(
            subject=data["subject"],
            body=data["body"],
            location=data["location"],
            categories=tuple(data["categories"]),
            start=start,
            end=end,
            reminder_minutes=data["reminder_minutes"],
            show_as=data["show_as"],
            cancelled=data["cancelled"],
        ),
        change_key=str(row["change_key"]),
        updated_at=updated_at,
    )
