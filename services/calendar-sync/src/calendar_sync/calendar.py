"""The calendar port, and its Microsoft Graph adapter (the iCalendar feed is in feed.py).

Every operation is idempotent, because the projection calls the calendar *before* it
commits its state and a crash in between repeats the call:

* `create` is keyed by (mailbox, activity, version): Graph dedupes on the `transactionId`
  derived from them, and `look_first` first searches the mailbox for an event tagged with
  the activity (needed whenever an earlier attempt may have created one under another
  version's transactionId);
* `update` overwrites the whole entry (the CRM is authoritative) and answers None when the
  event is gone, i.e. the user deleted it in Outlook: the caller records that and never
  creates it again;
* `remove` treats "already gone" as done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from calendar_sync.domain import CalendarEntry
from calendar_sync.graph import EventGone, GraphCalendar, GraphEvent, OutlookEvent, SyncStatus


@dataclass(frozen=True)
class Placed:
    """Where an entry now is: the calendar's id for it and its change key (etag)."""

    event_id: str
    change_key: str


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
        look_first: bool,
    ) -> Placed: ...

    def update(
        self, mailbox: str, activity_id: str, event_id: str, entry: CalendarEntry, *, version: int
    ) -> Placed | None: ...

    def remove(self, mailbox: str, activity_id: str, event_id: str) -> None: ...

    def fetch(self, mailbox: str, activity_id: str, event_id: str) -> Remote | None: ...

    def find(self, mailbox: str, activity_id: str) -> Remote | None: ...


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
        look_first: bool,
    ) -> Placed:
        event = outlook_event(entry)
        if look_first:
            found = self.client.find_by_activity(mailbox, activity_id)
            if found is not None:
                updated = self.client.update_event(mailbox, found.id, event)
                return Placed(updated.id, updated.change_key)
        created = self.client.create_event(mailbox, event, activity_id=activity_id, version=version)
        return Placed(created.id, created.change_key)

    def update(
        self, mailbox: str, activity_id: str, event_id: str, entry: CalendarEntry, *, version: int
    ) -> Placed | None:
        result = self.client.sync_event(
            mailbox, outlook_event(entry), activity_id=activity_id, event_id=event_id
        )
        if result.status is SyncStatus.DELETED_IN_OUTLOOK or result.event is None:
            return None
        return Placed(result.event.id, result.event.change_key)

    def remove(self, mailbox: str, activity_id: str, event_id: str) -> None:
        self.client.delete_event(mailbox, event_id)

    def fetch(self, mailbox: str, activity_id: str, event_id: str) -> Remote | None:
        try:
            return _remote(self.client.get_event(mailbox, event_id))
        except EventGone:
            return None

    def find(self, mailbox: str, activity_id: str) -> Remote | None:
        found = self.client.find_by_activity(mailbox, activity_id)
        return _remote(found) if found is not None else None
