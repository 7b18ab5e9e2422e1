"""The calendar port, and its Microsoft Graph adapter (the iCalendar feed is in feed.py).

Every operation is idempotent, because the lanes (lanes.py) call the calendar *before* they
commit the state and a crash in between repeats the call:

* `create` makes sure the activity has its one entry in the mailbox: it looks for entries
  tagged with the activity first (an earlier attempt may have made one, under any version's
  transactionId, or had its answer lost), keeps one of them (`keep`, the one the state knows,
  when it is there) and removes the others; only when none exists does it create one.
  `look=False` skips that first look, for a caller whose state proves that no create of the
  activity was ever sent (a lane's first take of the row, `SyncState.take_due`); an uncertain
  outcome is still looked after;
* `update` overwrites the whole entry (the CRM is authoritative) and answers None when the
  user deleted it in Outlook (gone, or in Deleted Items): the caller records that and never
  creates it again;
* `remove` treats "already gone" as done;
* `fetch`, `find_all` and `window` read (for reconciliation): `window` lists the tagged
  entries of the mailbox's default calendar in a time range, which is what the user sees.

Errors that are about the mailbox rather than the entry (`MailboxUnavailable`, `Throttled`,
`BudgetExhausted`, …) come from calendar_sync.graph and are handled per mailbox by the lanes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from calendar_sync.domain import CalendarEntry
from calendar_sync.graph import EventGone, GraphCalendar, GraphEvent, OutlookEvent, SyncStatus

__all__ = ["Calendar", "GraphCalendarAdapter", "Placed", "Remote", "outlook_event"]


@dataclass(frozen=True)
class Placed:
    """Where an entry now is: the calendar's id for it and its change key (etag)."""

    event_id: str
    change_key: str
    duplicates_removed: int = 0


@dataclass(frozen=True)
class Remote:
    """An entry as the calendar holds it (for reconciliation)."""

    event_id: str
    change_key: str
    subject: str
    start: datetime
    end: datetime
    location: str
    categories: tuple[str, ...]
    show_as: str
    activity_id: str | None = None

    def drift(self, wanted: CalendarEntry) -> list[str]:
        """Names of the fields that differ from what the CRM wants shown."""
        differences = {
            "subject": self.subject != wanted.subject,
            "start": _to_second(self.start) != _to_second(wanted.start),
            "end": _to_second(self.end) != _to_second(wanted.end),
            "location": self.location != wanted.location,
            "categories": sorted(self.categories) != sorted(wanted.categories),
            "show_as": self.show_as.lower() != wanted.show_as.lower(),
        }
        return [name for name, differs in differences.items() if differs]


class Calendar(Protocol):
    """A consultant's calendar, addressed by mailbox; see the module doc for the guarantees."""

    kind: str

    def create(
        self,
        mailbox: str,
        activity_id: str,
        entry: CalendarEntry,
        *,
        version: int,
        keep: str | None = None,
        look: bool = True,
    ) -> Placed: ...

    def update(
        self, mailbox: str, activity_id: str, event_id: str, entry: CalendarEntry, *, version: int
    ) -> Placed | None: ...

    def remove(self, mailbox: str, activity_id: str, event_id: str) -> None: ...

    def fetch(self, mailbox: str, activity_id: str, event_id: str) -> Remote | None: ...

    def find_all(self, mailbox: str, activity_id: str) -> list[Remote]: ...

    def window(self, mailbox: str, start: datetime, end: datetime) -> list[Remote]: ...


def _to_second(moment: datetime) -> datetime:
    # Graph keeps whole seconds (the client sends wall times without fractions).
    return moment.replace(microsecond=0)


def outlook_event(entry: CalendarEntry) -> OutlookEvent:
    return OutlookEvent(
        subject=entry.subject,
        body=entry.body,
        start=entry.start,
        end=entry.end,
        location=entry.location,
        categories=entry.categories,
        reminder_minutes=entry.reminder_minutes,
        show_as=entry.show_as,
    )


def _remote(event: GraphEvent) -> Remote:
    return Remote(
        event_id=event.id,
        change_key=event.change_key,
        subject=event.subject,
        start=event.start,
        end=event.end,
        location=event.location,
        categories=event.categories,
        show_as=event.show_as,
        activity_id=event.activity_id,
    )


class GraphCalendarAdapter:
    """Outlook through Microsoft Graph (production)."""

    kind = "graph"

    def __init__(self, client: GraphCalendar) -> None:
        self.client = client

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
        result = self.client.ensure_event(
            mailbox,
            outlook_event(entry),
            activity_id=activity_id,
            version=version,
            keep=keep,
            look_first=look,
        )
        assert result.event is not None  # ensure_event answers with the event or raises
        return Placed(result.event.id, result.event.change_key, result.duplicates_removed)

    def update(
        self, mailbox: str, activity_id: str, event_id: str, entry: CalendarEntry, *, version: int
    ) -> Placed | None:
        result = self.client.refresh_event(
            mailbox, outlook_event(entry), activity_id=activity_id, event_id=event_id
        )
        if result.status is SyncStatus.DELETED_IN_OUTLOOK or result.event is None:
            return None
        return Placed(result.event.id, result.event.change_key)

    def remove(self, mailbox: str, activity_id: str, event_id: str) -> None:
        self.client.delete_event(mailbox, event_id)

    def fetch(self, mailbox: str, activity_id: str, event_id: str) -> Remote | None:
        try:
            event = self.client.get_event(mailbox, event_id)
        except EventGone:
            return None
        return None if self.client.in_deleted_items(mailbox, event) else _remote(event)

    def find_all(self, mailbox: str, activity_id: str) -> list[Remote]:
        return [_remote(e) for e in self.client.find_by_activity(mailbox, activity_id)]

    def window(self, mailbox: str, start: datetime, end: datetime) -> list[Remote]:
        return [
            _remote(e)
            for e in self.client.calendar_view(mailbox, start, end)
            if e.activity_id is not None
        ]
