"""Mailbox lanes: all calendar work of a mailbox, one holder at a time, cluster-wide.

Outlook limits an application to 4 concurrent requests and 10,000 requests per 10 minutes
per mailbox, and answers throttling with a `Retry-After` of tens of seconds or minutes. The
consumers therefore never call the calendar (consumers.py): they mark rows due, and a lane
writes them. A lane is a mailbox's row in the `mailboxes` table:

* a lease (`claim`, compare-and-set in the shared database) gives one worker of one process
  the mailbox; every calendar call for it comes from that worker, one at a time, so the 4
  concurrent requests hold across every pod, reconciliation included (it holds the lane too:
  `hold`); entries an activity left in another mailbox are that mailbox's lane's work
  (leftovers), never a side trip;
* a pause (`paused_until`, with its reason) stops the mailbox, not a thread or a partition:
  `Throttled` pauses it for Graph's `Retry-After` (capped), `BudgetExhausted` until the
  request budget allows more, an unreachable Graph with a growing backoff, and
  `MailboxUnavailable` (a mailbox-level 404, or 403) on a slow schedule (minutes, doubling to
  hours): its due rows show `mailbox_unavailable` with Graph's code, stay due, and are written
  once the mailbox answers again; nothing is dead-lettered for what an administrator can fix;
* the request budget (10,000 per 10 minutes by default less a margin) is counted in tenths
  of the window in the lane's row, so it carries over from holder to holder;
* an entry Graph refuses for good (a 4xx about the entry itself) is `failed`, with the
  reason, and parked (`/ops/parked`), where an operator's retry makes it due again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx
import psycopg
from crm_contracts.enums import SyncStatus
from crm_platform.parking import ParkingLot
from eventsourcing.persistence import PersistenceError

from calendar_sync.graph import (
    BudgetExhausted,
    ChangeKeyConflict,
    CreateUnresolved,
    GraphError,
    GraphUnreachable,
    MailboxUnavailable,
    Throttled,
)
from calendar_sync.graph_auth import TokenError
from calendar_sync.metrics import SyncMetrics
from calendar_sync.projector import MAX_CONFLICTS, Placement, Projector
from calendar_sync.state import Leftover, MailboxState, Pause, SyncState

log = logging.getLogger(__name__)

LANES_WORKER = "calendar-sync-lanes"
# Answers that say "not now" about the mailbox or Graph, not "never" about the entry.
_TRANSIENT_STATUSES = frozenset({401, 408, 409, 423})
LANE_ERRORS = (
    Throttled,
    BudgetExhausted,
    MailboxUnavailable,
    GraphUnreachable,
    CreateUnresolved,
    TokenError,
    httpx.HTTPError,
)
# The state's own database failing: never the entry's fault, waited out by the lane loop.
_INFRASTRUCTURE = (PersistenceError, psycopg.Error, sqlite3.Error)


class Pace(Protocol):
    """The service's clock: now, and waiting in its seconds (tests run it faster)."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...

    def real_seconds(self, seconds: float) -> float: ...


class SystemPace:
    """Wall-clock time (production)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def real_seconds(self, seconds: float) -> float:
        return seconds


@dataclass(frozen=True)
class LaneSettings:
    lease_seconds: float = 60.0  # wall clock: a holder that died frees its lane after this
    retry_after_cap: float = 600.0  # the longest Retry-After honoured as such
    unavailable_first_check: float = 300.0  # a mailbox that refuses us: next look after this
    unavailable_max_check: float = 6 * 3600.0  # ... doubling up to this
    transient_first: float = 5.0  # Graph unreachable, 5xx, token trouble: first backoff
    transient_max: float = 300.0
    budget: int = 9_500  # requests per window and mailbox (Outlook allows 10,000)
    budget_window: float = 600.0
    idle_poll: float = 1.0  # wall clock: how often an idle lane looks for other pods' work
    batch: int = 50


class LaneBusy(Exception):
    """The mailbox's lane is held elsewhere or paused; `until` says when to ask again."""

    def __init__(self, mailbox: str, reason: str, until: datetime | None) -> None:
        super().__init__(f"lane of {mailbox} is {reason}")
        self.mailbox, self.reason, self.until = mailbox, reason, until


class LeaseLost(Exception):
    """Our lease expired and another holder took the lane: stop touching the mailbox."""


class RowRetryLater(Exception):
    """This row could not be written now (kept changing); it stays due."""


class Bell:
    """Wakes every idle lane when something may have become due (a save, a release)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rung = 0

    def ring(self) -> None:
        with self._cond:
            self._rung += 1
            self._cond.notify_all()

    def seen(self) -> int:
        with self._cond:
            return self._rung

    def wait(self, seen: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._rung != seen, timeout=max(timeout, 0.0))
            return self._rung


class RequestBudget:
    """Requests per mailbox over a sliding window, in tenths of it; the Graph client's meter.

    Counted conservatively: the window's ten buckets plus the one before, so a request that
    Graph still counts is never forgotten here. Only mailboxes whose lane this process holds
    are counted (loaded at claim, written back at release); a request for another one is not
    ours to count.
    """

    def __init__(self, pace: Pace, limit: int, window: float) -> None:
        self._pace = pace
        self._limit = limit
        self._bucket = max(window / 10, 1.0)
        self._held: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()

    def load(self, mailbox: str, buckets: Mapping[str, int]) -> None:
        with self._lock:
            self._held[mailbox] = {int(k): v for k, v in buckets.items()}

    def unload(self, mailbox: str) -> dict[str, int]:
        oldest = self._now() - 11
        with self._lock:
            buckets = self._held.pop(mailbox, {})
        return {str(k): v for k, v in buckets.items() if k > oldest}

    def used(self, mailbox: str) -> int:
        oldest = self._now() - 11
        with self._lock:
            return sum(v for k, v in self._held.get(mailbox, {}).items() if k > oldest)

    def __call__(self, mailbox: str) -> None:
        now = self._now()
        with self._lock:
            buckets = self._held.get(mailbox.lower())
            if buckets is None:
                return
            for old in [k for k in buckets if k <= now - 11]:
                del buckets[old]
            if sum(buckets.values()) >= self._limit:
                # Free once the oldest bucket has left the (widened) window.
                wait = (min(buckets) + 11) * self._bucket - self._pace.now().timestamp()
                raise BudgetExhausted(mailbox, max(wait, 1.0))
            buckets[now] = buckets.get(now, 0) + 1

    def _now(self) -> int:
        return int(self._pace.now().timestamp() // self._bucket)


def _wall() -> datetime:
    return datetime.now(UTC)


class Lanes:
    """Workers that drain due mailboxes; `hold` lends a lane to reconciliation."""

    def __init__(
        self,
        projector: Projector,
        metrics: SyncMetrics,
        pace: Pace,
        settings: LaneSettings | None = None,
        *,
        bell: Bell | None = None,
        budget: RequestBudget | None = None,
        parking: ParkingLot | None = None,
        wall: Callable[[], datetime] = _wall,
    ) -> None:
        self.projector = projector
        self.state: SyncState = projector.state
        self.calendar = projector.calendar
        self.metrics = metrics
        self.pace = pace
        self.settings = settings or LaneSettings()
        self.bell = bell or Bell()
        self.budget = budget or RequestBudget(
            pace, self.settings.budget, self.settings.budget_window
        )
        self.parking = parking
        self.wall = wall

    # --- the worker loop ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        seen = self.bell.seen()
        failures = 0
        while not stop.is_set():
            try:
                worked = self.step(stop)
                failures = 0
            except Exception:
                failures += 1
                log.exception("mailbox lane failed; retrying")
                stop.wait(min(0.5 * 2**failures, 30.0))
                continue
            if not worked:
                seen = self.bell.wait(seen, self._idle_timeout())

    def step(self, stop: threading.Event | None = None) -> bool:
        """Drain one due mailbox, if one can be had; False when none could."""
        for mailbox in self.state.due_lanes(self.pace.now(), self.wall(), self.settings.batch):
            holder = f"{uuid.uuid4().hex[:12]}"
            lane = self._claim(mailbox, holder)
            if lane is None:
                continue  # taken by another lane meanwhile
            self._drain(lane, holder, stop or threading.Event())
            return True
        return False

    def drain_all(self, max_rounds: int = 1000) -> None:
        """Drain until nothing is due now (tests and one-off commands)."""
        for _ in range(max_rounds):
            if not self.step():
                return

    def _idle_timeout(self) -> float:
        idle = self.settings.idle_poll
        upcoming = self.state.next_due()
        if upcoming is not None:
            ahead = (upcoming - self.pace.now()).total_seconds()
            idle = min(idle, self.pace.real_seconds(max(ahead, 0.0)) + 0.001)
        return idle

    def _claim(self, mailbox: str, holder: str) -> MailboxState | None:
        lane = self.state.claim(
            mailbox,
            holder,
            lease_until=self.wall() + timedelta(seconds=self.settings.lease_seconds),
            wall=self.wall(),
            now=self.pace.now(),
        )
        if lane is not None:
            self.budget.load(mailbox, lane.budget)
        return lane

    # --- one mailbox --------------------------------------------------------------------------
    def _drain(self, lane: MailboxState, holder: str, stop: threading.Event) -> None:
        mailbox = lane.mailbox
        renewed = time.monotonic()
        wrote = False
        skipped: set[str] = set()
        pause = Pause()
        try:
            while not stop.is_set():
                leftovers = self.state.leftovers(mailbox, self.settings.batch)
                rows = [
                    r
                    for r in self.state.due_rows(mailbox, self.pace.now(), self.settings.batch)
                    if r not in skipped
                ]
                if not leftovers and not rows:
                    break
                for leftover in leftovers:
                    self._remove_leftover(leftover)
                    wrote = True
                    renewed = self._keep(mailbox, holder, renewed)
                for activity_id in rows:
                    try:
                        wrote = self._sync_row(activity_id) or wrote
                    except RowRetryLater:
                        skipped.add(activity_id)
                    renewed = self._keep(mailbox, holder, renewed)
            # A mailbox that was unavailable is taken as back once a write went through.
            code, since, checks = (None, None, 0) if wrote else (lane.code, lane.since, lane.checks)
            until, reason = (
                (self._after(self.settings.transient_first), "retry") if skipped else (None, None)
            )
            pause = Pause(until, reason, code, since, checks)
            if wrote and lane.code is not None:
                log.warning("mailbox %s answers again (was %s)", mailbox, lane.code)
        except LeaseLost:
            log.warning("lost the lane of %s to another holder", mailbox)
        except LANE_ERRORS as error:
            pause = self._pause_for(error, lane, wrote)
        except GraphError as error:
            # Any other Graph error reaching here is about Graph, not one entry.
            pause = self._pause_for(error, lane, wrote)
        finally:
            self._release(mailbox, holder, pause)

    def _keep(self, mailbox: str, holder: str, renewed: float) -> float:
        """Renew the lease once a third of it has passed; LeaseLost when it is gone."""
        if time.monotonic() - renewed < self.settings.lease_seconds / 3:
            return renewed
        until = self.wall() + timedelta(seconds=self.settings.lease_seconds)
        if not self.state.renew(mailbox, holder, until):
            raise LeaseLost(mailbox)
        return time.monotonic()

    def _release(self, mailbox: str, holder: str, pause: Pause) -> None:
        used = self.budget.used(mailbox)
        budget = self.budget.unload(mailbox)
        self.metrics.budget_used.set(used / max(self.settings.budget, 1))
        self.state.release(mailbox, holder, budget=budget, pause=pause, now=self.pace.now())
        if pause.reason is not None:
            self.metrics.pauses.labels(pause.reason).inc()

    def _after(self, seconds: float) -> datetime:
        return self.pace.now() + timedelta(seconds=seconds)

    def _pause_for(self, error: BaseException, lane: MailboxState, wrote: bool) -> Pause:
        """How the lane is left after `error` (see the module doc)."""
        mailbox = lane.mailbox
        # The code stays until the mailbox has answered a write again.
        code, since = (None, None) if wrote else (lane.code, lane.since)
        if isinstance(error, MailboxUnavailable):
            checks = lane.checks + 1 if lane.code is not None else 1
            wait = min(
                self.settings.unavailable_first_check * 2 ** (checks - 1),
                self.settings.unavailable_max_check,
            )
            marked = self.state.mark_unavailable(mailbox, error.code, self.pace.now())
            if lane.code is None:
                log.error(
                    "mailbox %s unavailable (%s %s): %d activities wait for it; next look in %.0fs",
                    mailbox,
                    error.status,
                    error.code,
                    marked,
                    wait,
                )
            self.metrics.unavailable.labels(error.code).inc()
            return Pause(
                self._after(wait), "unavailable", error.code, lane.since or self.pace.now(), checks
            )
        if isinstance(error, Throttled):
            wait = error.retry_after
            if wait is None:
                wait = min(
                    self.settings.transient_first * 2**lane.checks, self.settings.transient_max
                )
            wait = min(wait, self.settings.retry_after_cap)
            log.info("mailbox %s throttled (%s): paused %.1fs", mailbox, error.code, wait)
            return Pause(self._after(wait), "throttled", code, since, lane.checks if code else 0)
        if isinstance(error, BudgetExhausted):
            log.warning("mailbox %s spent its request budget: paused %.0fs", mailbox, error.wait)
            return Pause(self._after(error.wait), "budget", code, since, lane.checks if code else 0)
        checks = lane.checks + 1
        wait = min(self.settings.transient_first * 2 ** (checks - 1), self.settings.transient_max)
        log.warning("mailbox %s: %s; paused %.0fs", mailbox, error, wait)
        return Pause(self._after(wait), "unreachable", code, since, checks)

    def _sync_row(self, activity_id: str) -> bool:
        """Write one due row; True when the calendar was written."""
        for _ in range(MAX_CONFLICTS):
            before = self.state.get(activity_id)
            if before is None or before.view is None or before.due_at is None:
                return False
            try:
                done, record, placement = self.projector.write(before, before.view)
            except (*LANE_ERRORS, *_INFRASTRUCTURE):
                raise
            except ChangeKeyConflict as error:
                raise RowRetryLater(activity_id) from error
            except GraphError as error:
                if error.status >= 500 or error.status in _TRANSIENT_STATUSES:
                    raise
                self._failed(activity_id, error)
                return False
            except Exception as error:
                # Not a Graph answer we know (a bug, an odd payload): kept with its reason.
                log.exception("writing activity %s failed", activity_id)
                self._failed(activity_id, error)
                return False
            if done:
                self._observe(before.due_at, record.status, placement)
                return True
        raise RowRetryLater(activity_id)

    def _observe(self, due_at: datetime, status: SyncStatus, placement: Placement) -> None:
        self.metrics.written.labels(status.value).inc()
        self.metrics.lane_delay.set(max((self.pace.now() - due_at).total_seconds(), 0.0))
        if placement.duplicates_removed:
            self.metrics.duplicates_removed.inc(placement.duplicates_removed)
        if placement.user_deleted:
            self.metrics.user_deleted.inc()

    def _failed(self, activity_id: str, error: BaseException) -> None:
        """Refused for good: the row says so (not due any more) and the entry is parked."""
        reason = f"{type(error).__name__}: {error}"[:500]
        for _ in range(MAX_CONFLICTS):
            before = self.state.get(activity_id)
            if before is None or before.view is None:
                return
            failed = replace(
                before,
                status=SyncStatus.FAILED,
                error=reason,
                error_version=before.view.version,
                revision=before.revision + 1,
                updated_at=self.pace.now(),
                due_at=None,
            )
            if self.state.save(failed, expected_revision=before.revision):
                break
        else:
            return  # kept changing: a newer version is due and will be tried
        self.metrics.failures.labels(type(error).__name__).inc()
        log.error("calendar refused activity %s: %s", activity_id, reason)
        if self.parking is not None:
            position = f"{activity_id}:{failed.view.version if failed.view else 0}"
            if not self.parking.parked_at(LANES_WORKER, position):
                self.parking.park_now(
                    worker=LANES_WORKER, position=position, subject=activity_id, error=error
                )

    def _remove_leftover(self, leftover: Leftover) -> None:
        """Delete what the activity left in this mailbox: every entry tagged with it in the
        default calendar (the known one among them), unless it belongs here again, in which
        case this mailbox's own write of it keeps one and removes the rest."""
        row = self.state.get(leftover.activity_id)
        back = row is not None and row.view is not None and row.view.owner == leftover.mailbox
        if not back:
            for found in self.calendar.find_all(leftover.mailbox, leftover.activity_id):
                self.calendar.remove(leftover.mailbox, leftover.activity_id, found.event_id)
        self.state.drop_leftover(leftover)

    # --- lending a lane -----------------------------------------------------------------------
    @contextmanager
    def hold(self, mailbox: str, *, wait: float = 30.0) -> Iterator[MailboxState]:
        """Hold the mailbox's lane (waiting up to `wait` wall seconds for its holder).

        `LaneBusy` when it stays held or is paused; a lane-level error inside pauses it as a
        worker's would and is raised again.
        """
        holder = f"hold-{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + wait
        while True:
            lane = self._claim(mailbox, holder)
            if lane is not None:
                break
            known = self.state.mailbox(mailbox)
            now = self.pace.now()
            if known is not None and known.paused_until is not None and known.paused_until > now:
                raise LaneBusy(mailbox, known.reason or "paused", known.paused_until)
            if time.monotonic() >= deadline:
                raise LaneBusy(mailbox, "busy", None)
            time.sleep(0.05)
        pause = Pause(code=lane.code, since=lane.since, checks=lane.checks)
        try:
            yield lane
            pause = Pause()
        except (*LANE_ERRORS, GraphError) as error:
            if not isinstance(error, ChangeKeyConflict):
                pause = self._pause_for(error, lane, False)
            raise
        finally:
            self._release(mailbox, holder, pause)

    # --- operators' retries -------------------------------------------------------------------
    def retry_parked(self) -> int:
        """Make due again the entries an operator marked for retry in /ops/parked."""
        if self.parking is None:
            return 0
        done = 0
        for entry in self.parking.due(LANES_WORKER):
            self.state.mark_due(entry.subject, self.pace.now())
            with self.parking.transaction() as tx:
                self.parking.resolve(tx, entry.id)
            done += 1
        return done

    def run_parked(self, stop: threading.Event, interval: float = 2.0) -> None:
        while not stop.wait(interval):
            try:
                self.retry_parked()
            except Exception as error:  # an outage: the next round tries again
                log.warning("retrying parked calendar entries failed: %s", error)


def mailbox_pause_seconds(state: MailboxState | None, now: datetime) -> float | None:
    """Seconds until a paused mailbox may be asked again (None: not paused)."""
    if state is None or state.paused_until is None or state.paused_until <= now:
        return None
    return (state.paused_until - now).total_seconds()
