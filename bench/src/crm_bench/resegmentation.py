"""Re-segmentation: a policy change recomputes a million customers on PostgreSQL.

Subject: `SegmentationApplication.set_policy` with thresholds raised 18 % (about one customer
in ten changes segment), then `RecomputeRunner.run` of the queued job, as the service's
recompute worker runs it: the registry pages, SQL picks who changes, those customers are
restored, refreshed and saved (events + registry rows + progress per page). Baseline: one
`UPDATE … SET segment = CASE … END` over a plain table holding the same potentials and
agreements, i.e. the least a database can do to re-segment everybody.
"""

from __future__ import annotations

import logging
import statistics
import time
from datetime import date

from crm_contracts.enums import Segment
from crm_platform.eventstore import StoreLocation
from psycopg import sql
from pyinstrument import Profiler
from segmentation.application import SegmentationApplication
from segmentation.recompute_worker import BATCH_SIZE, RecomputeRunner
from segmentation.rules import local_date
from segmentation.service import SERVICE_ACTOR

from crm_bench import customers, datasets
from crm_bench.core import Context, Result

NAME = "resegmentation"
TITLE = "Re-segmentation of every customer after a policy change"
log = logging.getLogger(__name__)

BASELINE_REPEATS = 3
PROFILE_CUSTOMERS = 100_000


def run(ctx: Context) -> Result:
    count = ctx.size(1_000_000, 5_000)
    result = Result(NAME, TITLE)
    if not ctx.quick:
        _profile(ctx)
    with datasets.scratch_store(ctx, "resegmentation") as location:
        app = SegmentationApplication(location.env())
        try:
            started = time.perf_counter()
            customers.load(location, app, count)
            customers.check_loaded(app, count)
            registry = app.registry.registry_table.split(".")[-1]
            datasets.analyze(location, datasets.events_table(app), registry)
            loaded = time.perf_counter() - started
            today = local_date(app.clock())
            expected = _changing(location, registry, today)
            log.info("resegmentation: %d customers loaded in %.1fs", count, loaded)

            baselines = [_update_case(location, registry, today) for _ in range(BASELINE_REPEATS)]
            baseline = statistics.median(baselines)
            started = time.perf_counter()
            outcome = app.set_policy(SERVICE_ACTOR, customers.adjusted_policy())
            job = RecomputeRunner(app).run(outcome.recomputation.id)
            subject = time.perf_counter() - started
        finally:
            app.close()
    if not job.finished or job.done != count or job.changed != expected:
        raise RuntimeError(
            f"recomputation {job.state}: {job.done} done, {job.changed} changed, "
            f"{expected} expected to change"
        )
    result.params = {
        "customers": count,
        "changing": job.changed,
        "changing_share": round(job.changed / count, 4),
        "policy_change": "thresholds raised ~20 %: A 390,000→470,000, B 140,000→170,000, "
        "C 45,000→55,000 DKK",
        "batch_size": BATCH_SIZE,
        "baseline_repeats": BASELINE_REPEATS,
    }
    result.subject = {
        "recompute_s": subject,
        "customers_per_s": count / subject,
        "changed_per_s": job.changed / subject,
    }
    result.baseline = {
        "update_case_s": baseline,
        **{f"update_case_s_run{i + 1}": s for i, s in enumerate(baselines)},
    }
    result.ratios = {"recompute/update": subject / baseline}
    result.ratio_notes = {
        "recompute/update": "recompute seconds ÷ plain UPDATE … CASE seconds; ≤ 1 would "
        "match the database alone, lower is better"
    }
    result.targets = {"recompute/update": "≤ 5"}
    result.notes = [
        f"{count:,} customers (3 % without potential, 5 % with an annual agreement in force, "
        "potentials log-uniform 10,000–1,500,000 DKK), events and registry rows as the "
        f"service writes them, COPY-loaded in {loaded:.0f} s (see customers.py), then ANALYZE.",
        f"{job.changed:,} customers ({job.changed / count:.1%}) change segment; the lead "
        "measured 2.0× at 1.5 %, 4–5× at 10 %, 28–30× at 92 % changing (10k customers).",
        "Subject: set_policy + RecomputeRunner.run in this process (one runner, pages of "
        f"{BATCH_SIZE}); it writes a SegmentChanged event and a registry row per change.",
        f"Baseline: median of {BASELINE_REPEATS} runs of one UPDATE setting every row's "
        "segment by CASE, each on a freshly copied plain table (no indexes, no events).",
        "2 cores shared by the subject, PostgreSQL, Kafka and the bench: absolute figures "
        "are noisy, the ratio less so.",
    ]
    return result


def _case(today: date) -> sql.Composed:
    """The new policy's segment, as the registry's `changed_between` spells it."""
    cents = [int(customers.NEW_THRESHOLDS[s] * 100) for s in (Segment.A, Segment.B, Segment.C)]
    return sql.SQL(
        "CASE WHEN agreement_starts_on <= {d} AND agreement_ends_on >= {d}"
        " THEN 'annual_agreement' WHEN potential_cents IS NULL THEN 'unsegmented'"
        " WHEN potential_cents >= {a} THEN 'A' WHEN potential_cents >= {b} THEN 'B'"
        " WHEN potential_cents >= {c} THEN 'C' ELSE 'D' END"
    ).format(
        d=sql.Literal(today),
        a=sql.Literal(cents[0]),
        b=sql.Literal(cents[1]),
        c=sql.Literal(cents[2]),
    )


def _changing(location: StoreLocation, registry: str, today: date) -> int:
    with datasets.connect(location) as conn:
        row = conn.execute(
            sql.SQL("SELECT COUNT(*) FROM {} WHERE {} <> segment").format(
                datasets.table(location, registry), _case(today)
            )
        ).fetchone()
    assert row is not None
    return int(row[0])


def _update_case(location: StoreLocation, registry: str, today: date) -> float:
    """Times only the UPDATE: the plain table is copied fresh (and analysed) beforehand."""
    plain = datasets.table(location, "plain_segments")
    with datasets.connect(location) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(plain))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} AS SELECT seq AS id, potential_cents, agreement_starts_on,"
                " agreement_ends_on, segment FROM {}"
            ).format(plain, datasets.table(location, registry))
        )
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(plain))
    with datasets.connect(location) as conn:
        started = time.perf_counter()
        conn.execute(sql.SQL("UPDATE {} SET segment = {}").format(plain, _case(today)))
        return time.perf_counter() - started


def _profile(ctx: Context) -> None:
    with datasets.scratch_store(ctx, "resegmentation_profile") as location:
        app = SegmentationApplication(location.env())
        try:
            customers.load(location, app, PROFILE_CUSTOMERS)
            registry = app.registry.registry_table.split(".")[-1]
            datasets.analyze(location, datasets.events_table(app), registry)
            profiler = Profiler(interval=0.005)
            with profiler:
                outcome = app.set_policy(SERVICE_ACTOR, customers.adjusted_policy())
                job = RecomputeRunner(app).run(outcome.recomputation.id)
        finally:
            app.close()
    header = (
        f"set_policy + RecomputeRunner.run over {PROFILE_CUSTOMERS:,} customers, "
        f"{job.changed:,} changing"
    )
    datasets.save_profile(ctx, profiler, header, NAME)
