"""Putting an activity's view into its owner's calendar, then committing the state.

Order, and why: Graph is not transactional, so the calendar cannot join the database
transaction. Each writer therefore

1. reads the row (view, mailbox, event id, revision),
2. calls the calendar (create / update / remove), idempotently,
3. commits the new row (plus, for a consumer, the message's tracking position) in ONE
   transaction, as a compare-and-set on the revision read in 1.

A crash between 2 and 3 leaves the calendar ahead of the state; the message is delivered
again (its tracking position was not committed) and step 2 repeats harmlessly: a create
carries the same transactionId (same mailbox, activity and version, so Graph answers with
the event it already made), or looks the event up by its `CrmActivityId` property first when
an earlier attempt may have used another version; an update writes the same content; a
remove of a removed event counts as done. The opposite order (commit, then call) would lose
the calendar change on a crash, with nothing left to repeat it.

A lost compare-and-set in 3 means another writer (name refresh, reconciliation) committed
in between; the loser starts again at 1, so its calendar write is repeated with what is now
committed, and the last write to the calendar matches the last commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from crm_contracts.enums import SyncStatus
from crm_platform.messaging import Delivery

from calendar_sync.calendar import Calendar
from calendar_sync.domain import ActivityView, CalendarEntry, CancelMode, render
from calendar_sync.state import SyncRecord, SyncState

log = logging.getLogger(__name__)

MAX_CONFLICTS = 5


class ConcurrentUpdates(Exception):
    """The row kept changing under us; the message is retried later."""


@dataclass(frozen=True)
class Placement:
    mailbox: str
    event_id: str | None
    change_key: str | None
    status: SyncStatus


def place(
    calendar: Calendar,
    before: SyncRecord | None,
    view: ActivityView,
    entry: CalendarEntry | None,
    *,
    look_first: bool,
) -> Placement:
    """Make the calendar show `entry` (None: nothing) for the activity; idempotent."""
    target = view.owner
    if before is None or before.event_id is None:
        mailbox, event_id, change_key, status = target, None, None, None
    else:
        mailbox, event_id = before.mailbox, before.event_id
        change_key, status = before.change_key, before.status
    live = event_id is not None and status not in (
        SyncStatus.DELETED_IN_OUTLOOK,
        SyncStatus.REMOVED,
    )
    if entry is None:
        if live and event_id is not None:
            calendar.remove(mailbox, view.activity_id, event_id)
        return Placement(mailbox, None, None, SyncStatus.REMOVED)
    if status is SyncStatus.DELETED_IN_OUTLOOK and mailbox == target:
        # The user deleted it in Outlook: later changes must not bring it back.
        return Placement(mailbox, event_id, change_key, SyncStatus.DELETED_IN_OUTLOOK)
    if live and event_id is not None and mailbox == target:
        placed = calendar.update(mailbox, view.activity_id, event_id, entry, version=view.version)
        if placed is None:
            return Placement(mailbox, event_id, None, SyncStatus.DELETED_IN_OUTLOOK)
        return Placement(mailbox, placed.event_id, placed.change_key, SyncStatus.SYNCED)
    # No entry in the target calendar yet (new, or reassigned): create it there first, then
    # take the old one away, so the activity is never missing from both calendars.
    placed = calendar.create(
        target,
        view.activity_id,
        entry,
        version=view.version,
        look_first=look_first or mailbox != target,
    )
    if live and event_id is not None and mailbox != target:
        calendar.remove(mailbox, view.activity_id, event_id)
    return Placement(target, placed.event_id, placed.change_key, SyncStatus.SYNCED)


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
        before: SyncRecord | None,
        view: ActivityView,
        *,
        look_first: bool,
        track: Delivery | None = None,
        names: Mapping[str, str | None] | None = None,
    ) -> tuple[bool, SyncRecord]:
        """One attempt: (committed?, the row as written). Not committed: re-read and retry.

        `names`: customer names read with `before` (see `SyncState.inbound`).
        """
        entry, name = self.entry_for(view, names)
        placement = place(self.calendar, before, view, entry, look_first=look_first)
        record = SyncRecord(
            activity_id=view.activity_id,
            view=view,
            version=view.version,
            mailbox=placement.mailbox,
            event_id=placement.event_id,
            change_key=placement.change_key,
            status=placement.status,
            error=None,
            error_version=None,
            shown_name=name,
            revision=(before.revision if before else 0) + 1,
            updated_at=self.clock(),
        )
        expected = before.revision if before is not None else 0
        return self.state.save(record, expected_revision=expected, track=track), record

    def refresh(self, activity_id: str) -> SyncRecord | None:
        """Write the current view again (e.g. the customer's name became known)."""
        for _ in range(MAX_CONFLICTS):
            before = self.state.get(activity_id)
            if before is None or before.view is None:
                return before
            if before.status is not SyncStatus.SYNCED:
                return before  # removed, deleted by the user, or failing: nothing to refresh
            done, record = self.write(before, before.view, look_first=True)
            if done:
                return record
        raise ConcurrentUpdates(f"activity {activity_id} kept changing during a refresh")

    def refresh_names(self, customer_id: str | None = None) -> int:
        """Refresh every entry whose subject shows a stale customer name; returns how many.

        Failures are logged and left for the next sweep: the stale rows stay queryable.
        """
        done = 0
        for activity_id in self.state.stale_names(customer_id):
            try:
                self.refresh(activity_id)
                done += 1
            except Exception:
                log.exception("could not refresh the subject of activity %s", activity_id)
        return done
