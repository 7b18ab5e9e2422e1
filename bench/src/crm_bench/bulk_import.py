"""Bulk import: 100,000 customers from CSV through the segmentation service's import path.

Subject: `segmentation.imports.CustomerImport` as the service actor (what `python -m
segmentation import FILE` runs: read and validate row by row, register each batch of 500 in
one transaction with potentials and agreements), in a child process of its own for its peak
RSS. Baseline: PostgreSQL `COPY` of the same file into a plain typed table, the floor for
getting these bytes into the database at all.
"""

from __future__ import annotations

import logging
import statistics
import time
from datetime import date
from pathlib import Path

from crm_platform.actors import system_clock
from crm_platform.eventstore import StoreLocation
from psycopg import sql
from pyinstrument import Profiler
from segmentation.application import SegmentationApplication
from segmentation.imports import BATCH_SIZE, CustomerImport
from segmentation.rules import local_date
from segmentation.service import SERVICE_ACTOR

from crm_bench import customers, datasets
from crm_bench.core import Context, Result

NAME = "bulk_import"
TITLE = "Bulk import of customers from CSV"
log = logging.getLogger(__name__)

BASELINE_REPEATS = 3
PROFILE_ROWS = 5_000
_BLOCK = 1 << 20  # bytes per COPY write


def run(ctx: Context) -> Result:
    rows = ctx.size(100_000, 2_000)
    today = local_date(system_clock())
    path = ctx.work_dir / "customers.csv"
    customers.write_csv(path, rows, today)
    size_mb = path.stat().st_size / 1e6
    result = Result(NAME, TITLE)
    if not ctx.quick:
        _profile(ctx, today)
    with datasets.scratch_store(ctx, "bulk_import") as location:
        SegmentationApplication(location.env()).close()  # creates the tables, as the CLI does
        baselines = [_copy(location, path) for _ in range(BASELINE_REPEATS)]
        assert location.postgres_dsn is not None
        child = datasets.run_child(
            "import", location.postgres_dsn, location.schema, str(path), str(BATCH_SIZE)
        )
    if child.report["imported"] != rows or child.report["rejected"]:
        raise RuntimeError(f"import: {child.report}")
    subject = child.report["seconds"]
    baseline = statistics.median(baselines)
    result.params = {
        "rows": rows,
        "csv_mb": round(size_mb, 1),
        "batch_size": BATCH_SIZE,
        "with_potential": "97 %",
        "with_agreement": "5 %",
        "baseline_repeats": BASELINE_REPEATS,
    }
    result.subject = {
        "import_rows_per_s": rows / subject,
        "import_s": subject,
        "import_process_wall_s": child.wall_seconds,
    }
    result.baseline = {
        "copy_rows_per_s": rows / baseline,
        "copy_s": baseline,
        **{f"copy_s_run{i + 1}": s for i, s in enumerate(baselines)},
    }
    result.ratios = {"import/copy": baseline / subject}
    result.ratio_notes = {
        "import/copy": "import rows/s ÷ COPY rows/s (same CSV); ≥ 1 is better, 1 would be "
        "the database's own bulk load"
    }
    result.peak_rss_mb = {"segmentation import": child.peak_rss_mb}
    result.notes = [
        f"{rows:,} new customers in a {size_mb:.1f} MB CSV (3 % without potential, 5 % with an "
        "annual agreement in force); every row is imported, none rejected.",
        "Subject: segmentation.imports.CustomerImport as the service actor in a child process "
        "(the import CLI's code; the CLI itself always uses schema 'segmentation'), timed "
        "inside it; RSS is the child's own VmHWM. It writes 2–4 events and a registry row per "
        "customer.",
        f"Baseline: median of {BASELINE_REPEATS} COPY … (FORMAT csv) of the file into a plain "
        "table with typed columns and no indexes (table emptied between runs).",
        "2 cores shared by the subject, PostgreSQL, Kafka and the bench: absolute figures "
        "are noisy, the ratio less so.",
    ]
    return result


def _copy(location: StoreLocation, path: Path) -> float:
    plain = datasets.table(location, "plain_import")
    with datasets.connect(location) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(plain))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (customer_id text, name text, cvr text, owner text,"
                " potential_dkk numeric(14, 2), annual_agreement_from date,"
                " annual_agreement_to date)"
            ).format(plain)
        )
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(
                sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)").format(plain)
            ) as copy,
            path.open("rb") as file,
        ):
            while block := file.read(_BLOCK):
                copy.write(block)
        return time.perf_counter() - started


def _profile(ctx: Context, today: date) -> None:
    path = ctx.work_dir / "profile.csv"
    customers.write_csv(path, PROFILE_ROWS, today, seed=13)
    with datasets.scratch_store(ctx, "bulk_import_profile") as location:
        app = SegmentationApplication(location.env())
        try:
            profiler = Profiler(interval=0.002)
            with profiler, path.open(encoding="utf-8-sig", newline="") as lines:
                CustomerImport(app, SERVICE_ACTOR).run(lines)
        finally:
            app.close()
    header = f"CustomerImport.run of {PROFILE_ROWS:,} new customers, batches of {BATCH_SIZE}"
    datasets.save_profile(ctx, profiler, header, NAME)
