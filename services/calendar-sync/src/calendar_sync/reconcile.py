"""Reconciliation: compare an owner's calendar with the sync state and repair the drift.

Per row of the owner, the calendar entry is read back and compared with what the CRM wants
shown (the CRM is authoritative):

* gone although we made it → the user deleted it: recorded as `deleted_in_outlook`, never
  created again (rows already in that state are not even looked at);
* different time, subject, categories, location or free/busy → written again;
* never created (an earlier attempt failed) → looked up by its `CrmActivityId` property,
  then created if absent;
* cancelled (remove mode) but still there → removed.

Writes follow the same order as the consumers (calendar, then a compare-and-set on the row):
a row that changed meanwhile is read again and compared again.

Graph only lets us read the events we know of one by one here (GET by id, or the lookup by
extended property): events tagged with an activity the state does not know are not found.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from crm_contracts.enums import SyncStatus

from calendar_sync.domain import ActivityView
from calendar_sync.metrics import SyncMetrics
from calendar_sync.projector import MAX_CONFLICTS, Projector
from calendar_sync.state import SyncRecord

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    owner: str
    checked: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class Reconciler:
    def __init__(
        self, projector: Projector, metrics: SyncMetrics, clock: Callable[[], datetime]
    ) -> None:
        self.projector = projector
        self.state = projector.state
        self.calendar = projector.calendar
        self.metrics = metrics
        self.clock = clock

    def reconcile(self, owner: str) -> ReconcileReport:
        report = ReconcileReport(owner)
        for record in self.state.for_owner(owner):
            report.checked += 1
            try:
                outcome = self._converge(record.activity_id)
            except Exception as error:
                log.exception("reconciling activity %s failed", record.activity_id)
                outcome = "failed"
                report.errors.append(f"{record.activity_id}: {type(error).__name__}: {error}")
            report.count(outcome)
            self.metrics.reconciled.labels(outcome).inc()
        return report

    def _converge(self, activity_id: str) -> str:
        for _ in range(MAX_CONFLICTS):
            before = self.state.get(activity_id)
            if before is None or before.view is None:
                return "unknown"  # only a failure was recorded: the consumer retries it
            if before.status is SyncStatus.DELETED_IN_OUTLOOK:
                return "kept_deleted"  # the user's decision: never look again, never re-create
            outcome = self._attempt(before, before.view)
            if outcome is not None:
                return outcome
        return "busy"

    def _attempt(self, before: SyncRecord, view: ActivityView) -> str | None:
        """Repair one row; None when another writer changed it meanwhile (look again)."""
        entry, _name = self.projector.entry_for(view)
        mailbox, activity_id = before.mailbox, before.activity_id
        if entry is None:  # cancelled in remove mode: must not be in any calendar
            found = self.calendar.find(mailbox, activity_id)
            if found is None:
                return "unchanged"
            self.calendar.remove(mailbox, activity_id, found.event_id)
            changes = {"event_id": None, "change_key": None, "status": SyncStatus.REMOVED}
            return "removed" if self._save(before, changes) else None
        if before.event_id is not None and before.status is not SyncStatus.REMOVED:
            remote = self.calendar.fetch(mailbox, activity_id, before.event_id)
            if remote is None:
                changes = {"change_key": None, "status": SyncStatus.DELETED_IN_OUTLOOK}
                return "deleted_in_outlook" if self._save(before, changes) else None
            if mailbox == view.owner and not remote.drift(entry):
                return "unchanged"
            outcome = "repaired"
        else:
            outcome = "created"  # never made (or made by an attempt whose answer was lost)
        done, _record = self.projector.write(before, view, look_first=True)
        return outcome if done else None

    def _save(self, before: SyncRecord, changes: dict[str, Any]) -> bool:
        after = replace(
            before, **changes, error=None, revision=before.revision + 1, updated_at=self.clock()
        )
        return self.state.save(after, expected_revision=before.revision)
