"""The calendar-sync domain: what an activity looks like in its owner's calendar; no I/O.

`fold` turns the stored view of an activity plus one contract event into the next view;
`render` turns a view into the calendar entry to show (or None: nothing should be shown).
The activity events are "fat" (planned, moved, retyped, reassigned and edited carry the whole
calendar view), so most events can be applied whatever was seen before; completed and
cancelled carry no times or subject and need the stored view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Final

from crm_contracts.activity import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityEdited,
    ActivityEvent,
    ActivityMoved,
    ActivityPlanned,
    ActivityReassigned,
    ActivityRetyped,
)
from crm_contracts.enums import ActivityType, Channel

CRM_CATEGORY: Final = "CRM"
DONE_CATEGORY: Final = "Udført"
CANCELLED_CATEGORY: Final = "Aflyst"
CANCELLED_PREFIX: Final = "Aflyst: "
REMINDER_MINUTES: Final = 15
# Outlook refuses subjects past 255 characters; label + subject + name can exceed that.
SUBJECT_MAX: Final = 255

# Where the meeting happens, as a consultant reads it in Outlook (Danish, like the labels).
LOCATIONS: Final[dict[Channel, str]] = {
    Channel.PHYSICAL: "Hos kunden",
    Channel.PHONE: "Telefon",
    Channel.VIDEO: "Online (Teams)",
    Channel.EMAIL: "E-mail",
}


class CancelMode(StrEnum):
    """What a cancellation does to the calendar entry."""

    REMOVE = "remove"  # the entry goes (default): a cancelled meeting is no meeting
    MARK = "mark"  # kept, prefixed "Aflyst: ", category Aflyst, shown as free


class Lifecycle(StrEnum):
    PLANNED = "planned"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ActivityView:
    """The part of an activity the calendar shows, as of `version`."""

    activity_id: str
    customer_id: str
    owner: str
    type: ActivityType
    channel: Channel
    subject: str
    agenda: str | None
    starts_at: datetime
    ends_at: datetime
    lifecycle: Lifecycle
    version: int


@dataclass(frozen=True)
class CalendarEntry:
    """What the calendar should show for an activity, whichever calendar it is."""

    subject: str
    body: str
    location: str
    categories: tuple[str, ...]
    start: datetime
    end: datetime
    reminder_minutes: int | None = REMINDER_MINUTES
    show_as: str = "busy"
    cancelled: bool = False


def mailbox_of(owner: str) -> str:
    """Owners are user ids, i.e. mailbox addresses; mailboxes ignore case."""
    return owner.strip().lower()


def fold(view: ActivityView | None, event: ActivityEvent) -> ActivityView | None:
    """The view after `event`, or None when the event changes nothing the calendar shows.

    The caller has already skipped events at or below the stored version.
    """
    activity_id, customer_id = str(event.activity_id), event.customer_id
    match event:
        case ActivityPlanned():
            return ActivityView(
                activity_id,
                customer_id,
                mailbox_of(event.owner),
                event.type,
                event.channel,
                event.subject,
                event.agenda,
                event.starts_at,
                event.ends_at,
                Lifecycle.PLANNED,
                event.version,
            )
        case ActivityMoved():
            times = (event.to_starts_at, event.to_ends_at)
            return _upsert(view, event, event.owner, event.type, event.channel, times)
        case ActivityRetyped():
            times = (event.starts_at, event.ends_at)
            return _upsert(view, event, event.owner, event.to_type, event.to_channel, times)
        case ActivityReassigned():
            times = (event.starts_at, event.ends_at)
            return _upsert(view, event, event.to_owner, event.type, event.channel, times)
        case ActivityEdited():
            times = (event.starts_at, event.ends_at)
            edited = _upsert(view, event, event.owner, event.type, event.channel, times)
            return replace(edited, agenda=event.agenda)
        case ActivityCompleted() if view is not None:
            return replace(
                view,
                owner=mailbox_of(event.owner),
                type=event.type,
                channel=event.channel,
                lifecycle=Lifecycle.COMPLETED,
                version=event.version,
            )
        case ActivityCancelled() if view is not None:
            return replace(view, lifecycle=Lifecycle.CANCELLED, version=event.version)
    # Registered (never planned, so never in a calendar), attachments, and completed or
    # cancelled for an activity whose plan we never saw: nothing to show.
    return None


def _upsert(
    view: ActivityView | None,
    event: ActivityMoved | ActivityRetyped | ActivityReassigned | ActivityEdited,
    owner: str,
    type_: ActivityType,
    channel: Channel,
    times: tuple[datetime, datetime],
) -> ActivityView:
    return ActivityView(
        str(event.activity_id),
        event.customer_id,
        mailbox_of(owner),
        type_,
        channel,
        event.subject,
        view.agenda if view is not None else None,  # only the plan carries the agenda
        times[0],
        times[1],
        view.lifecycle if view is not None else Lifecycle.PLANNED,
        event.version,
    )


def subject_line(view: ActivityView, customer_name: str | None) -> str:
    """`<label>: <subject> – <customer name>`; the customer id until the name is known."""
    line = f"{view.type.label}: {view.subject} – {customer_name or view.customer_id}"
    return line if len(line) <= SUBJECT_MAX else line[: SUBJECT_MAX - 1] + "…"


def render(
    view: ActivityView, customer_name: str | None, cancel_mode: CancelMode
) -> CalendarEntry | None:
    """The entry to show, or None when the activity should not be in the calendar."""
    cancelled = view.lifecycle is Lifecycle.CANCELLED
    if cancelled and cancel_mode is CancelMode.REMOVE:
        return None
    subject = subject_line(view, customer_name)
    categories: tuple[str, ...] = (CRM_CATEGORY, view.type.label)
    if view.lifecycle is Lifecycle.COMPLETED:
        categories += (DONE_CATEGORY,)
    if cancelled:
        subject = (CANCELLED_PREFIX + subject)[:SUBJECT_MAX]
        categories += (CANCELLED_CATEGORY,)
    return CalendarEntry(
        subject=subject,
        body=view.agenda or "",
        location=LOCATIONS[view.channel],
        categories=categories,
        start=view.starts_at,
        end=view.ends_at,
        show_as="free" if cancelled else "busy",
        cancelled=cancelled,
    )
