"""Recomputing every customer after a policy change: the worker that does the paging.

The runner pages through the customer registry (registry.py) in registration order, lets SQL
pick the rows the policy would change (the cost of an `UPDATE ... CASE` scan), restores just
those customers from their rows (snapshots written with their events), lets each `refresh`
(which records a `SegmentChanged` only on a real change) and saves the changed customers
together with the job's progress in one transaction. So progress is durable exactly when the
page's effects are, a crash resumes after the last committed page, and a page repeated anyway
(two runners, a retry after a lost race) changes nothing twice: the customers it touched
already have their new segment. A save based on a stale row fails on the event store's version
check and the page is retried, smaller.

Each batch is judged by the policy current at that moment, so a job overtaken by a newer policy
still leaves every customer it visits right; `set_policy` marks the older job superseded.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from segmentation.application import SegmentationApplication
from segmentation.recompute import FAILED, QUEUED, Recomputation
from segmentation.registry import FOLDED_NAMES
from segmentation.rules import SegmentReason, local_date

log = logging.getLogger(__name__)

BATCH_SIZE: Final = 2000  # customers per page and transaction (see the report for timings)


class Waiter(Protocol):
    def wait(self, timeout: float) -> None: ...


class RecomputeRunner:
    """Runs recomputations in batches; `run` is safe to call again after any crash."""

    def __init__(
        self,
        app: SegmentationApplication,
        *,
        batch_size: int = BATCH_SIZE,
        max_attempts: int = 5,
        retry_pause: float = 0.5,
    ) -> None:
        self.app = app
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_pause = retry_pause

    def run(self, recomputation_id: UUID, stop: threading.Event | None = None) -> Recomputation:
        """Run (or resume) one job until it is done, fails, or `stop` is set."""
        stop = stop or threading.Event()
        job = self._begin(recomputation_id)
        failures, size = 0, self.batch_size
        while not job.finished and job.state != FAILED and not stop.is_set():
            try:
                job = self._step(job, size)
                failures, size = 0, self.batch_size
            except IntegrityError:
                # A customer changed under us, or another runner saved this job: start over
                # from what is committed (nothing of the failed batch was saved), with a
                # smaller batch, so a customer being edited right now cannot stall the job.
                job = self.app.recomputation(recomputation_id)
                size = max(1, size // 2)
            except Exception as error:
                failures += 1
                log.warning("recomputation %s: batch failed (%s)", recomputation_id, error)
                job = self.app.recomputation(recomputation_id)
                if failures >= self.max_attempts:
                    job.fail(f"{type(error).__name__}: {error}", self.app.clock())
                    self.app.save(job)
                    log.exception("recomputation %s failed", recomputation_id)
                    break
                stop.wait(self.retry_pause * failures)
        return job

    def run_pending(self, stop: threading.Event | None = None) -> list[UUID]:
        """Run the current policy's job if it is queued or running; returns what it ran."""
        adopted = self.app.current_policy()
        job_id = adopted.recomputation_id
        if job_id is None:
            return []
        job = self.app.recomputation(job_id)
        if job.finished or job.state == FAILED:
            return []
        self.run(job_id, stop)
        return [job_id]

    def run_forever(
        self, stop: threading.Event, waker: Waiter | None = None, poll_interval: float = 5.0
    ) -> None:
        """The background worker: run whatever is pending, then wait to be woken."""
        while not stop.is_set():
            try:
                self.run_pending(stop)
            except Exception:
                log.exception("recomputation worker failed; retrying")
                stop.wait(poll_interval)
                continue
            if waker is not None:
                waker.wait(poll_interval)
            else:
                stop.wait(poll_interval)

    # -- internals ------------------------------------------------------------------------

    def _begin(self, recomputation_id: UUID) -> Recomputation:
        job = self.app.recomputation(recomputation_id)
        if job.state not in (QUEUED, FAILED):
            return job
        registry = self.app.registry
        now = self.app.clock()
        if job.state == QUEUED:
            # Read after the policy was committed: any customer saved later evaluated it.
            last = registry.registry_max_seq()
            job.start(stop=last, total=registry.registry_count(stop=last), now=now)
        else:
            job.resume(now)
        try:
            self.app.save(job)
        except IntegrityError:
            return self.app.recomputation(recomputation_id)
        return job

    def _step(self, job: Recomputation, size: int) -> Recomputation:
        """One page of the registry: find who changes (in SQL), refresh them, save them
        together with the job's progress."""
        started = time.perf_counter()
        registry = self.app.registry
        last, count = registry.page(after=job.position, stop=job.stop, limit=size)
        now = self.app.clock()
        if count == 0:
            job.finish(now)
            self.app.save(job)
            return job
        adopted = self.app.current_policy()
        candidates = registry.changed_between(
            after=job.position, upto=last, policy=adopted.policy, today=local_date(now)
        )
        changed = [
            c
            for c in self.app.restore_customers(candidates)
            if c.refresh(
                adopted.policy,
                cause=SegmentReason.POLICY_CHANGED,
                effective_on=adopted.effective_on or job.effective_on,
                actor=adopted.adopted_by or job.actor,
                now=now,
            )
        ]
        job.progress(position=last, processed=count, changed=len(changed), now=now)
        folded = {r.name: r.search_name for r in candidates if r.search_name is not None}
        self.app.save(*changed, job, **{FOLDED_NAMES: folded})
        log.debug(
            "recomputation %s: %d customers, %d changed, %.3fs",
            job.id,
            count,
            len(changed),
            time.perf_counter() - started,
        )
        return job
