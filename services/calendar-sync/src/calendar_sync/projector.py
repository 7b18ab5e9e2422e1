"""Putting an activity's view into its owner's calendar, then committing the state.

Order, and why: Graph is not transactional, so the calendar cannot join the database
transaction. The writer (a mailbox lane, or reconciliation holding the lane) therefore

1. reads the row (view, mailbox, event id, revision),
2. calls the calendar (create / update / remove), idempotently,
3. commits the new row (`due_at` cleared) in ONE transaction, as a compare-and-set on the
   revision read in 1.

A crash between 2 and 3 leaves the calendar ahead of the state; the row is still due and is
written again: a create looks for the activity's tagged entries first (calendar.py), an
update writes the same content, a remove of a removed entry counts as done. The opposite
order (commit, then call) would lose the calendar change on a crash, with nothing left to
repeat it.

A lost compare-and-set in 3 means another writer (a consumer with a newer version, the
name refresh) committed in between; the loser starts again at 1, so its calendar write is
repeated with what is now committed, and the last write to the calendar matches the last
commit.

An entry that moves to another mailbox (a reassignment) is created in the new one first and
its old entry is left to the old mailbox's lane (a `Leftover`): every calendar call of a lane
goes to its own mailbox, and the activity is never missing from both calendars.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from crm_contracts.enums import SyncStatus

from calendar_sync.calendar import Calendar
from calendar_sync.domain import ActivityView, CalendarEntry, CancelMode, render
from calendar_sync.state import Due, Leftover, SyncRecord, SyncState

log = logging.getLogger(__name__)

MAX_CONFLICTS = 5


class ConcurrentUpdates(Exception):
    """The row kept changing under us; it stays due and is written later."""


@dataclass(frozen=True)
class Placement:
    mailbox: str
    event_id: str | None
    change_key: str | None
    status: SyncStatus
    leftover: tuple[str, str] | None = None  # (mailbox, event id or '') the activity left
    duplicates_removed: int = 0
    user_deleted: bool = False  # this write found that the user deleted the entry


def place(
    calendar: Calendar,
    before: SyncRecord | None,
    view: ActivityView,
    entry: CalendarEntry | None,
    *,
    first: bool = False,
) -> Placement:
    """Make the owner's calendar show `entry` (None: nothing) for the activity; idempotent.

    Calls only the target mailbox (the owner's); what the activity left elsewhere becomes a
    leftover for that mailbox's lane: the entry known there, or, when no write there was ever
    recorded, whatever an attempt whose outcome was lost may have made. `first`: the state
    proves no create of the activity was ever sent, so a create need not look for one.
    """
    target = view.owner
    if before is None:
        mailbox, event_id, change_key, status = target, None, None, None
    else:
        mailbox, event_id = before.mailbox, before.event_id
        change_key, status = before.change_key, before.status
    gone = status in (SyncStatus.DELETED_IN_OUTLOOK, SyncStatus.REMOVED)
    live = event_id is not None and not gone
    # A row that was due in `mailbox` but never recorded an entry: an attempt may have made
    # one whose answer (or commit) was lost. Only the tag can tell.
    unconfirmed = before is not None and event_id is None and not gone
    elsewhere = (mailbox, event_id or "") if mailbox != target and (live or unconfirmed) else None
    if entry is None:
        if mailbox == target and live and event_id is not None:
            calendar.remove(mailbox, view.activity_id, event_id)
        elif mailbox == target and unconfirmed:
            for found in calendar.find_all(mailbox, view.activity_id):
                calendar.remove(mailbox, view.activity_id, found.event_id)
        return Placement(
            target if elsewhere else mailbox, None, None, SyncStatus.REMOVED, elsewhere
        )
    if status is SyncStatus.DELETED_IN_OUTLOOK and mailbox == target:
        # The user deleted it in Outlook: later changes must not bring it back.
        return Placement(mailbox, event_id, change_key, SyncStatus.DELETED_IN_OUTLOOK)
    if live and event_id is not None and mailbox == target:
        placed = calendar.update(mailbox, view.activity_id, event_id, entry, version=view.version)
        if placed is None:
            return Placement(
                mailbox, event_id, None, SyncStatus.DELETED_IN_OUTLOOK, user_deleted=True
            )
        return Placement(mailbox, placed.event_id, placed.change_key, SyncStatus.SYNCED)
    # No entry in the target calendar yet (new, reassigned, or an earlier create whose
    # outcome was never known): `create` adopts a tagged entry that exists already.
    created = calendar.create(target, view.activity_id, entry, version=view.version, look=not first)
    return Placement(
        target,
        created.event_id,
        created.change_key,
        SyncStatus.SYNCED,
        elsewhere,
        created.duplicates_removed,
    )


class Projector:
    """Writes one activity's entry: calendar first, then the row (see the module doc)."""

    def __init__(
        self,
        state: SyncState,
        calendar: Calendar,
        cancel_mode: CancelMode,
        clock: Callable[[], datetime],
    ) -> None:
        self.state = state
        self.calendar = calendar
        self.cancel_mode = cancel_mode
        self.clock = clock

    def entry_for(
        self, view: ActivityView, known: Mapping[str, str | None] | None = None
    ) -> tuple[CalendarEntry | None, str | None]:
        """The entry and the name in its subject; `known`: names already read (by id)."""
        if known is not None and view.customer_id in known:
            name = known[view.customer_id]
        else:
            name = self.state.customer_name(view.customer_id)
        return render(view, name, self.cancel_mode), name

    def write(
        self,
        before: SyncRecord,
        view: ActivityView,
        *,
        taken: Due | None = None,
    ) -> tuple[bool, SyncRecord, Placement]:
        """One attempt: (committed?, the row as written, what was done in the calendar).

        `taken`: the row as a lane took it up (`SyncState.take_due`: marked, with the name);
        without it the row is marked here before anything could create an entry, so a later
        first-time take can never skip a look that this write makes necessary.
        Not committed: another writer changed the row; re-read and try again.
        """
        if taken is not None and taken.record.revision == before.revision:
            entry, name = self.entry_for(view, {view.customer_id: taken.customer_name})
            first = taken.first
        else:
            entry, name = self.entry_for(view)
            first = False
            if entry is not None:  # the write may create
                self.state.mark_tried(view.activity_id)
        placement = place(self.calendar, before, view, entry, first=first)
        record = SyncRecord(
            activity_id=view.activity_id,
            view=view,
            version=max(view.version, before.version),
            mailbox=placement.mailbox,
            event_id=placement.event_id,
            change_key=placement.change_key,
            status=placement.status,
            error=None,
            error_version=None,
            shown_name=name,
            revision=before.revision + 1,
            updated_at=self.clock(),
            due_at=None,
        )
        leftover = None
        if placement.leftover is not None:
            leftover = Leftover(placement.leftover[0], placement.leftover[1], view.activity_id)
        settled = (
            [(placement.mailbox, placement.event_id)] if placement.event_id is not None else []
        )
        done = self.state.save(
            record, expected_revision=before.revision, leftover=leftover, settled=settled
        )
        return done, record, placement
