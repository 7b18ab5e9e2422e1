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
* a lane is kept across consecutive work: once its mailbox has nothing due, the process
  keeps the lease for `linger` seconds (and at most `lease_seconds` in all), so the next
  message for a busy mailbox is written without taking the lease again; any worker of the
  process may drain a kept lane, one at a time. Work is announced, not polled for: a save
  that leaves a row due names its mailbox to this process's lanes (`Bell.ring`) and, on
  PostgreSQL, to every process's (NOTIFY on `SyncState.due_channel`, heard by `listen`); a
  poll of the database every `idle_poll` seconds covers anything unannounced (timers,
  a lost notification);
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
from psycopg import sql

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
from calendar_sync.state import Due, Leftover, MailboxState, Pause, SyncState

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
    idle_poll: float = 1.0  # wall clock: how often idle lanes look for unannounced work
    linger: float = 2.0  # wall clock: how long an idle lane is kept (at most lease / 3)
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
    """Wakes idle lanes: `ring(mailbox)` when that mailbox has new work (a hint, for one
    worker), `ring()` when anything may have become due (every worker, and a poll)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self._rung = 0
        self.hints: dict[str, None] = {}  # mailboxes with announced work, oldest first
        self.general = False  # rung without a mailbox since the last poll

    def ring(self, mailbox: str | None = None) -> None:
        with self.cond:
            self._rung += 1
            if mailbox is None:
                self.general = True
                self.cond.notify_all()
            else:
                self.hints[mailbox] = None
                self.cond.notify()

    def seen(self) -> int:
        with self.cond:
            return self._rung

    def wait(self, seen: int, timeout: float) -> int:
        with self.cond:
            self.cond.wait_for(lambda: self._rung != seen, timeout=max(timeout, 0.0))
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


@dataclass
class _Kept:
    """A lane this process holds: its state at the claim, and its timings (monotonic)."""

    lane: MailboxState
    claimed: float
    renewed: float
    idle_since: float
    busy: bool  # a worker is draining it (or it is being given back)


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
        # One holder name for every lane this instance takes: a lane it keeps is its own.
        self.token = uuid.uuid4().hex[:12]
        self._kept: dict[str, _Kept] = {}  # guarded by the bell's condition
        self._claiming: set[str] = set()
        self._elsewhere: dict[str, float] = {}  # mailbox → until when its hints are dropped
        self._linger = min(self.settings.linger, self.settings.lease_seconds / 3)
        self._poll_every = self.settings.idle_poll
        self._polled = -float("inf")  # monotonic: the last poll of the database
        self._next_due: datetime | None = None  # the earliest pause or backoff, as last read

    # --- the worker loop ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        seen = self.bell.seen()
        failures = 0
        try:
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
        finally:
            self.release_kept()

    def step(self, stop: threading.Event | None = None, *, poll: bool = False) -> bool:
        """Work one mailbox: an announced one first, else one the database says is due (a
        poll, when `poll` or one is due: see `_poll_due`); False when there was none."""
        stop = stop or threading.Event()
        # Lanes first given back, then the announcements: one that came while its lane was
        # being given back was passed over by the worker it woke.
        self._release_idle()
        while (mailbox := self._hinted()) is not None:
            if self._work(mailbox, stop):
                return True
        if not self._poll_due(poll):
            return False
        found = self.state.due_lanes(
            self.pace.now(), self.wall(), self.settings.batch, ours=self.token
        )
        for n, mailbox in enumerate(found):
            if self._work(mailbox, stop):
                for other in found[n + 1 :]:
                    self.bell.ring(other)  # for the other idle workers
                return True
        return False

    def drain_all(self, max_rounds: int = 1000) -> None:
        """Drain until nothing is due now, then give every lane back (tests, one-off commands)."""
        for _ in range(max_rounds):
            if not self.step(poll=True):
                break
        self.release_kept()

    def _hinted(self) -> str | None:
        """An announced mailbox no worker of this process is draining (taken off the hints).

        Announcements reach every process; one whose lane another process held a moment ago
        is dropped here for `linger`: that holder keeps it while it is busy and hears the
        same announcement, and it gives the lane back only after `linger` without work, by
        when this has expired. Asking the database again would be a failed claim per process
        and message."""
        now = time.monotonic()
        with self.bell.cond:
            for mailbox in list(self.bell.hints):
                kept = self._kept.get(mailbox)
                if kept is not None and kept.busy:
                    continue
                del self.bell.hints[mailbox]
                if kept is None and self._elsewhere.get(mailbox, now) > now:
                    continue
                return mailbox
        return None

    def _poll_due(self, force: bool) -> bool:
        """Whether to ask the database now: when told to, after a ring without a mailbox, once
        `idle_poll` has passed or the earliest pause or backoff is over; one worker at a time."""
        now = time.monotonic()
        with self.bell.cond:
            upcoming = self._next_due
            timer = upcoming is not None and upcoming <= self.pace.now()
            if not (force or self.bell.general or timer or now - self._polled >= self._poll_every):
                return False
            self.bell.general = False
            self._polled = now
        self._next_due = self.state.next_due(self.pace.now())
        return True

    def _idle_timeout(self) -> float:
        """Wall seconds until an idle worker should look again by itself."""
        now = time.monotonic()
        timeout = max(self._polled + self._poll_every - now, 0.0)
        upcoming = self._next_due
        if upcoming is not None:
            ahead = (upcoming - self.pace.now()).total_seconds()
            timeout = min(timeout, self.pace.real_seconds(max(ahead, 0.0)) + 0.001)
        with self.bell.cond:
            for kept in self._kept.values():
                if not kept.busy:
                    timeout = min(timeout, max(kept.idle_since + self._linger - now, 0.0))
        return timeout + 0.001

    def _work(self, mailbox: str, stop: threading.Event) -> bool:
        """Drain the mailbox if its lane is ours (kept) or can be had; False when it cannot."""
        with self.bell.cond:
            kept = self._kept.get(mailbox)
            if kept is not None:
                if kept.busy:
                    return False
                kept.busy = True
            elif mailbox in self._claiming:
                return False
            else:
                self._claiming.add(mailbox)
        if kept is None:
            try:
                lane = self._claim(mailbox, self.token)
            finally:
                with self.bell.cond:
                    self._claiming.discard(mailbox)
            if lane is None:
                # Held elsewhere or paused: its holder, or a poll, sees to it.
                with self.bell.cond:
                    self._elsewhere[mailbox] = time.monotonic() + self._linger
                return False
            now = time.monotonic()
            kept = _Kept(lane, claimed=now, renewed=now, idle_since=now, busy=True)
            with self.bell.cond:
                self._kept[mailbox] = kept
                self._elsewhere.pop(mailbox, None)
                for gone in [m for m, until in self._elsewhere.items() if until <= now]:
                    del self._elsewhere[gone]
        self._drain(kept, stop)
        return True

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
    def _drain(self, kept: _Kept, stop: threading.Event) -> None:
        """Write the mailbox's due rows and leftovers until none are left, then keep the lane
        (or give it back: paused, stopping, kept long enough, or answering again)."""
        lane = kept.lane
        mailbox = lane.mailbox
        wrote = False
        skipped: set[str] = set()
        pause: Pause | None = Pause(code=lane.code, since=lane.since, checks=lane.checks)
        try:
            # A kept lane may have waited for a free worker longer than its lease allows:
            # renewed (or found lost) before anything is sent.
            self._keep(kept)
            while not stop.is_set():
                worked = False
                for due in self.state.take_due(mailbox, self.pace.now(), self.settings.batch):
                    if due.record.activity_id in skipped:
                        continue
                    worked = True
                    try:
                        wrote = self._sync_row(due) or wrote
                    except RowRetryLater:
                        skipped.add(due.record.activity_id)
                    self._keep(kept)
                # After the rows, which wait on Graph while the leftovers' owners do not.
                for leftover in self.state.leftovers(mailbox, self.settings.batch):
                    self._remove_leftover(leftover)
                    wrote = worked = True
                    self._keep(kept)
                if not worked:
                    with self.bell.cond:
                        if self.bell.hints.pop(mailbox, False) is None:
                            continue  # announced while this pass ran: look once more
                    break
            if wrote and lane.code is not None:
                # A mailbox that was unavailable is taken as back once a write went through.
                log.warning("mailbox %s answers again (was %s)", mailbox, lane.code)
                pause = Pause()
            elif skipped:
                pause = Pause(
                    self._after(self.settings.transient_first),
                    "retry",
                    lane.code,
                    lane.since,
                    lane.checks,
                )
            elif (
                not stop.is_set() and time.monotonic() - kept.claimed < self.settings.lease_seconds
            ):
                pause = None  # kept for the next message
        except LeaseLost:
            log.warning("lost the lane of %s to another holder", mailbox)
        except LANE_ERRORS as error:
            pause = self._pause_for(error, lane, wrote)
        except GraphError as error:
            # Any other Graph error reaching here is about Graph, not one entry.
            pause = self._pause_for(error, lane, wrote)
        finally:
            if pause is None:
                with self.bell.cond:
                    kept.busy = False
                    kept.idle_since = time.monotonic()
            else:
                self._release(mailbox, self.token, pause)

    def _keep(self, kept: _Kept) -> None:
        """Renew the lease once a third of it has passed; LeaseLost when it is gone."""
        if time.monotonic() - kept.renewed < self.settings.lease_seconds / 3:
            return
        until = self.wall() + timedelta(seconds=self.settings.lease_seconds)
        if not self.state.renew(kept.lane.mailbox, self.token, until):
            raise LeaseLost(kept.lane.mailbox)
        kept.renewed = time.monotonic()

    def _release_idle(self, everything: bool = False) -> None:
        """Give back the kept lanes idle for `linger` (all idle ones: `everything`)."""
        now = time.monotonic()
        with self.bell.cond:
            idle = [
                k
                for k in self._kept.values()
                if not k.busy and (everything or now - k.idle_since >= self._linger)
            ]
            for kept in idle:
                kept.busy = True  # no worker takes it up while it is given back
        for kept in idle:
            lane = kept.lane
            self._release(
                lane.mailbox,
                self.token,
                Pause(code=lane.code, since=lane.since, checks=lane.checks),
            )

    def release_kept(self) -> None:
        """Give back every kept lane no worker is draining (stopping, or done draining)."""
        self._release_idle(everything=True)

    def _release(self, mailbox: str, holder: str, pause: Pause) -> None:
        used = self.budget.used(mailbox)
        budget = self.budget.unload(mailbox)
        self.metrics.budget_used.set(used / max(self.settings.budget, 1))
        try:
            self.state.release(mailbox, holder, budget=budget, pause=pause, now=self.pace.now())
        finally:
            if holder == self.token:
                with self.bell.cond:
                    self._kept.pop(mailbox, None)
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

    def _sync_row(self, due: Due) -> bool:
        """Write one due row as taken up; True when the calendar was written."""
        activity_id = due.record.activity_id
        taken: Due | None = due
        for _ in range(MAX_CONFLICTS):
            # The row as taken first; after a lost compare-and-set, as it is now (and then
            # the write marks it again: its first attempt may have created the entry).
            before = due.record if taken is not None else self.state.get(activity_id)
            if before is None or before.view is None or before.due_at is None:
                return False
            try:
                done, record, placement = self.projector.write(before, before.view, taken=taken)
                taken = None
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
            self._surrender(mailbox)
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
            with self.bell.cond:
                self._elsewhere.pop(mailbox, None)  # it was held here, after all
            self.bell.ring(mailbox)  # what was staged meanwhile

    def _surrender(self, mailbox: str) -> None:
        """Give back the mailbox's lane if this process keeps it idle (a busy one is given
        back, or kept, by its worker; the caller asks again)."""
        with self.bell.cond:
            kept = self._kept.get(mailbox)
            if kept is None or kept.busy:
                return
            kept.busy = True
        lane = kept.lane
        self._release(
            mailbox, self.token, Pause(code=lane.code, since=lane.since, checks=lane.checks)
        )

    # --- announcements from other processes ------------------------------------------------
    def listen(self, dsn: str, stop: threading.Event) -> None:
        """Hear, on PostgreSQL, which mailboxes other processes' saves made due (see the
        module doc); runs until `stop`, re-connecting after a lost connection."""
        channel = sql.Identifier(self.state.due_channel)
        while not stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(channel))
                    self.bell.ring()  # whatever was announced while nobody listened: a poll
                    while not stop.is_set():
                        for note in conn.notifies(timeout=1.0, stop_after=1):
                            self.bell.ring(note.payload)
            except psycopg.OperationalError as error:
                log.warning("LISTEN %s lost (%s); reconnecting", self.state.due_channel, error)
                stop.wait(1.0)

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
