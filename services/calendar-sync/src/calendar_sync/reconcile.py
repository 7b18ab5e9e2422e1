"""Reconciliation: compare an owner's calendar with the sync state and repair the drift.

It holds the mailbox's lane (lanes.py) while it works, so it never runs beside the lane's
worker, and walks the owner's default calendar in a window (`calendarView`, the CRM tag
expanded): what the consultant sees. Per activity of the owner (the CRM is authoritative):

* tagged entries beyond the one the state knows are duplicates: deleted;
* the known entry gone from the calendar: looked up by id as a second signal; gone or in
  Deleted Items → the user deleted it: `deleted_in_outlook`, never created again;
* an entry of a `deleted_in_outlook` activity back in the calendar (the user moved it out of
  Deleted Items) → `restored`: it is the activity's entry again and kept up to date;
* different time, subject, categories, location or free/busy → written again;
* never created (or created by an attempt whose answer was lost) → created, adopting a tagged
  entry that exists already;
* cancelled (remove mode) but still there → removed.

Tagged entries of activities that belong to another calendar are left-behind copies:
deleted. Tagged entries of activities the state does not know at all are counted as
`orphaned` and left alone: deleting a consultant's entry needs more than missing knowledge.
Entries outside the window are checked one by one (by id), as before the walk.

Writes follow the same order as the lanes (calendar, then a compare-and-set on the row): a
row that changed meanwhile is read again and compared again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from crm_contracts.enums import SyncStatus

from calendar_sync.calendar import Remote
from calendar_sync.lanes import LANE_ERRORS, Lanes
from calendar_sync.metrics import SyncMetrics
from calendar_sync.projector import MAX_CONFLICTS
from calendar_sync.state import SyncRecord

log = logging.getLogger(__name__)

_LIVE_GONE = (SyncStatus.DELETED_IN_OUTLOOK, SyncStatus.REMOVED)


@dataclass
class ReconcileReport:
    owner: str
    checked: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    duplicates_removed: int = 0

    def count(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n


class Reconciler:
    def __init__(
        self,
        lanes: Lanes,
        metrics: SyncMetrics,
        clock: Callable[[], datetime],
        *,
        window_back: timedelta = timedelta(days=31),
        window_ahead: timedelta = timedelta(days=400),
    ) -> None:
        self.lanes = lanes
        self.projector = lanes.projector
        self.state = lanes.state
        self.calendar = lanes.calendar
        self.metrics = metrics
        self.clock = clock
        self.window_back = window_back
        self.window_ahead = window_ahead

    def reconcile(self, owner: str) -> ReconcileReport:
        """Repair the owner's calendar; `LaneBusy` when its lane cannot be had now."""
        with self.lanes.hold(owner):
            return self._reconcile(owner)

    def _reconcile(self, owner: str) -> ReconcileReport:
        report = ReconcileReport(owner)
        now = self.clock()
        start, end = now - self.window_back, now + self.window_ahead
        shown: dict[str, list[Remote]] = {}
        for remote in self.calendar.window(owner, start, end):
            if remote.activity_id is not None:
                shown.setdefault(remote.activity_id, []).append(remote)
        records = self.state.for_owner(owner)
        for record in records:
            report.checked += 1
            try:
                # Outside the window `shown` is empty: the entry is then asked for by id.
                outcome = self._converge(
                    record.activity_id, owner, shown.get(record.activity_id, []), report
                )
            except Exception as error:
                if isinstance(error, LANE_ERRORS):
                    raise
                log.exception("reconciling activity %s failed", record.activity_id)
                outcome = "failed"
                report.errors.append(f"{record.activity_id}: {type(error).__name__}: {error}")
            report.count(outcome)
            self.metrics.reconciled.labels(outcome).inc()
        known = {r.activity_id for r in records}
        for activity_id, remotes in shown.items():
            if activity_id in known:
                continue
            outcome = "orphaned" if self.state.get(activity_id) is None else "leftover_removed"
            for remote in remotes:
                if outcome == "leftover_removed":
                    self.calendar.remove(owner, activity_id, remote.event_id)
                else:
                    log.warning(
                        "tagged event %s of unknown activity %s in %s",
                        remote.event_id,
                        activity_id,
                        owner,
                    )
            report.count(outcome, len(remotes))
            self.metrics.reconciled.labels(outcome).inc(len(remotes))
        return report

    def _converge(
        self,
        activity_id: str,
        owner: str,
        shown: list[Remote],
        report: ReconcileReport,
    ) -> str:
        for _ in range(MAX_CONFLICTS):
            before = self.state.get(activity_id)
            if before is None or before.view is None:
                return "unknown"
            outcome = self._attempt(before, owner, shown, report)
            if outcome is not None:
                return outcome
        return "busy"

    def _remove(
        self, owner: str, activity_id: str, remotes: list[Remote], report: ReconcileReport
    ) -> int:
        for remote in remotes:
            self.calendar.remove(owner, activity_id, remote.event_id)
        report.duplicates_removed += len(remotes)
        if remotes:
            self.metrics.duplicates_removed.inc(len(remotes))
        return len(remotes)

    def _attempt(
        self,
        before: SyncRecord,
        owner: str,
        shown: list[Remote],
        report: ReconcileReport,
    ) -> str | None:
        """Repair one row; None when another writer changed it meanwhile (look again)."""
        view = before.view
        assert view is not None
        activity_id = before.activity_id
        entry, _name = self.projector.entry_for(view)
        here = before.mailbox == owner
        known = before.event_id if here else None
        if view.owner != owner:
            # The activity belongs to another calendar; the entry the row still points to is
            # moved by the other mailbox's lane (created there first, then removed here).
            extras = [r for r in shown if r.event_id != known]
            return (
                "leftover_removed"
                if self._remove(owner, activity_id, extras, report)
                else "unchanged"
            )
        mine = next((r for r in shown if r.event_id == known), None)
        extras = [r for r in shown if r is not mine]
        if before.status is SyncStatus.DELETED_IN_OUTLOOK and here:
            self._remove(owner, activity_id, extras, report)
            if mine is None:
                return "kept_deleted"  # the user's decision: never re-created
            # The user moved it back out of Deleted Items: it is the activity's entry again.
            done, _record, _placement = self.projector.write(
                replace(before, status=SyncStatus.SYNCED), view
            )
            return "restored" if done else None
        if entry is None:  # cancelled in remove mode: must not be in any calendar
            self._remove(owner, activity_id, shown, report)
            if before.status is SyncStatus.REMOVED or before.event_id is None:
                return "removed" if shown else "unchanged"
            done, _record, _placement = self.projector.write(before, view)
            return "removed" if done else None
        live = known is not None and before.status not in _LIVE_GONE
        if live and mine is None:
            # Not in the calendar the user sees: ask for it by id before believing a delete.
            assert known is not None
            mine = self.calendar.fetch(owner, activity_id, known)
            if mine is None:
                self._remove(owner, activity_id, extras, report)
                gone = replace(
                    before,
                    change_key=None,
                    status=SyncStatus.DELETED_IN_OUTLOOK,
                    error=None,
                    revision=before.revision + 1,
                    updated_at=self.clock(),
                    due_at=None,
                )
                if not self.state.save(gone, expected_revision=before.revision):
                    return None
                self.metrics.user_deleted.inc()
                return "deleted_in_outlook"
        if live and mine is not None:
            self._remove(owner, activity_id, extras, report)
            if (
                not mine.drift(entry)
                and before.due_at is None
                and before.status is SyncStatus.SYNCED
            ):
                return "unchanged"
            done, _record, _placement = self.projector.write(before, view)
            return "repaired" if done else None
        # Never made, or made by an attempt whose answer was lost: the write adopts a tagged
        # entry that exists (and removes any others) before it would create one.
        done, _record, placement = self.projector.write(before, view)
        report.duplicates_removed += placement.duplicates_removed
        if not done:
            return None
        return "adopted" if shown else "created"
