"""Replay: rebuild the activity read models from a log of a million events on PostgreSQL.

Subject: `activity.projections.rebuild` (what `python -m activity rebuild-read-models` runs),
in a child process of its own for its peak RSS. Baseline: reading the same notifications
without projecting them, `select_notifications` over the same topics with the same batch
size, as the rebuild's follower reads them. The ratio says what share of the raw read speed
survives decoding, folding and writing the three tables.
"""

from __future__ import annotations

import logging
import time

from activity.application import ActivityApplication
from activity.projections import ACTIVITY_TOPICS, REBUILD_BATCH, rebuild
from crm_platform.eventstore import StoreLocation
from eventsourcing.persistence import StoredEvent
from psycopg import sql
from pyinstrument import Profiler

from crm_bench import activity_log, datasets
from crm_bench.core import Context, Result

NAME = "replay"
TITLE = "Replay: rebuild the activity read models from the log"
log = logging.getLogger(__name__)

REPLICAS = 10  # the generated block, again for as many disjoint sets of customers
BASELINE_REPEATS = 3


class _NoCustomers:
    """The rebuild reads the log only; no command asks for a customer."""

    def get(self, customer_id: str) -> None:
        return None


def run(ctx: Context) -> Result:
    target = ctx.size(1_000_000, 5_000)  # notifications: Activity and customer-file events
    replicas = ctx.size(REPLICAS, 1)
    customers = ctx.size(2_000, 500)  # per replica
    result = Result(NAME, TITLE)
    with datasets.scratch_store(ctx, "replay") as location:
        app = ActivityApplication(location.env(), directory=_NoCustomers())
        try:
            events_table = datasets.events_table(app)
            block = [
                app.mapper.to_stored_event(e)
                for e in activity_log.events(customers, target // replicas)
            ]
            if not ctx.quick:
                _profile(ctx, block)
            with datasets.indexes_deferred(location, events_table):
                stored = datasets.copy_events(
                    location, events_table, activity_log.replicate(block, replicas, customers)
                )
            datasets.analyze(location, events_table)
            activity_events = _count(location, events_table)
            log.info("replay: %d notifications, %d Activity events", stored, activity_events)

            cpu_before = time.process_time()
            scan, scans = datasets.median_seconds(lambda: _scan(app), BASELINE_REPEATS)
            scan_cpu = (time.process_time() - cpu_before) / BASELINE_REPEATS
            assert location.postgres_dsn is not None
            child = datasets.run_child("rebuild", location.postgres_dsn, location.schema)
        finally:
            app.close()
    rebuilt = child.report["seconds"]
    if child.report["timeline_rows"] != activity_events:
        raise RuntimeError(f"rebuild wrote {child.report['timeline_rows']} timeline rows")
    result.params = {
        "activity_events": activity_events,
        "notifications": stored,
        "activities": child.report["activity_rows"],
        "customers": customers * replicas,
        "consultants": 60 * replicas,
        "batch_size": REBUILD_BATCH,
        "baseline_repeats": BASELINE_REPEATS,
    }
    result.subject = {
        "rebuild_events_per_s": activity_events / rebuilt,
        "rebuild_s": rebuilt,
        "rebuild_process_wall_s": child.wall_seconds,
        "rebuild_process_cpu_s": child.cpu_seconds,
    }
    result.baseline = {
        "scan_events_per_s": activity_events / scan,
        "scan_s": scan,
        "scan_cpu_s_mean": scan_cpu,
        **{f"scan_s_run{i + 1}": s for i, s in enumerate(scans)},
    }
    result.ratios = {
        "rebuild/scan": scan / rebuilt,
        "rebuild/scan client CPU": scan_cpu / child.cpu_seconds,
    }
    result.ratio_notes = {
        "rebuild/scan": "rebuild events/s ÷ scan events/s (same log, topics, batch); ≥ 1 is better",
        "rebuild/scan client CPU": "the same by the Python process's own CPU seconds "
        "(PostgreSQL's not counted; the rebuild's include process start and imports): "
        "less disturbed by other load on the machine",
    }
    result.targets = {"rebuild/scan": "≥ 0.5"}
    result.peak_rss_mb = {"activity rebuild": child.peak_rss_mb}
    result.notes = [
        f"A log of {stored:,} events: {activity_events:,} Activity events (what the read "
        "models fold and the baseline reads) and the customer files' events the service saves "
        "with them. Made by the real aggregates and mapper: a block of "
        f"{target // replicas:,} generated command by command, replicated {replicas}× for "
        "disjoint customers, consultants and activities, interleaved in time; COPY-loaded, "
        "then ANALYZE.",
        "Sized as a log of 1M events, not 1M Activity events: a 2M-event log would take the "
        "whole `make bench` past its 15-minute budget on 2 cores. The throughput and ratio "
        "change little with the size (0.17 on a 2M-event log; 0.21–0.29 on 1M in five runs).",
        "Subject: activity.projections.rebuild (the rebuild-read-models CLI's function) in a "
        "child process, timed inside it (shadow view, indexes created after the fill); RSS "
        "is the child's own VmHWM.",
        f"Baseline: median of {BASELINE_REPEATS} select_notifications scans over the same "
        f"topics, batch {REBUILD_BATCH}, without decoding.",
        "2 cores shared by the subject, PostgreSQL, Kafka and the bench: absolute figures "
        "are noisy, the ratio less so.",
    ]
    return result


def _scan(app: ActivityApplication) -> int:
    count, position = 0, 0
    topics = list(ACTIVITY_TOPICS)
    while page := app.recorder.select_notifications(
        start=position, limit=REBUILD_BATCH, topics=topics, inclusive_of_start=False
    ):
        count += len(page)
        position = page[-1].id
    return count


def _count(location: StoreLocation, events_table: str) -> int:
    with datasets.connect(location) as conn:
        row = conn.execute(
            sql.SQL("SELECT COUNT(*) FROM {} WHERE topic = ANY(%s)").format(
                datasets.table(location, events_table)
            ),
            (list(ACTIVITY_TOPICS),),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _profile(ctx: Context, block: list[StoredEvent]) -> None:
    """One rebuild of the generated block alone (a tenth of the full log), profiled."""
    with datasets.scratch_store(ctx, "replay_profile") as location:
        app = ActivityApplication(location.env(), directory=_NoCustomers())
        try:
            events_table = datasets.events_table(app)
            datasets.copy_events(location, events_table, block)
            datasets.analyze(location, events_table)
            events = _count(location, events_table)
            profiler = Profiler(interval=0.005)
            with profiler:
                rebuild(location.env(), app=app).close()
        finally:
            app.close()
    header = f"rebuild of {events:,} Activity events (activity.projections.rebuild)"
    datasets.save_profile(ctx, profiler, header, NAME)
