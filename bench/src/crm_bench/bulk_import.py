"""Bulk import: 100,000 customers from CSV through the segmentation service's import path.

Subject: `segmentation.imports.CustomerImport` as the service actor (what `python -m
segmentation import FILE` runs: read and validate row by row, register each batch in one
transaction with potentials and agreements), in a child process of its own for its peak
RSS. Baseline: PostgreSQL `COPY` of the same file into a plain typed table, the floor for
getting these bytes into the database at all.

Second subject: `activity.imports.ActivityImport` (what `POST /activity/imports` runs) with a
history of past activities for those customers, in this process, against a `COPY` of its
own file.
"""

from __future__ import annotations

import logging
import statistics
import time
from datetime import date
from pathlib import Path

from activity.application import ActivityApplication
from activity.imports import ActivityImport
from activity.rules import CustomerEntry
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
HISTORY_PER_CUSTOMER = 2
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
    history_rows = rows * HISTORY_PER_CUSTOMER
    history = _history(ctx, history_rows, rows)
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
    result.subject.update(
        {
            "history_rows_per_s": history_rows / history["import_s"],
            "history_import_s": history["import_s"],
        }
    )
    result.baseline["history_copy_s"] = history["copy_s"]
    result.params["history_rows"] = history_rows
    result.ratios = {
        "import/copy": baseline / subject,
        "history import/copy": history["copy_s"] / history["import_s"],
    }
    result.ratio_notes = {
        "import/copy": "import rows/s ÷ COPY rows/s (same CSV); ≥ 1 is better, 1 would be "
        "the database's own bulk load",
        "history import/copy": "activity history import rows/s ÷ COPY rows/s of its CSV",
    }
    result.targets = {"import/copy": "≥ 0.025", "history import/copy": "≥ 0.025"}
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
        f"History: {history_rows:,} past activities ({HISTORY_PER_CUSTOMER} per customer) "
        "through activity.imports.ActivityImport as the service actor in this process "
        "(one event per activity, batches of its default size), every customer known to "
        "the directory; its baseline is one COPY of its CSV into a plain typed table.",
        "2 cores shared by the subject, PostgreSQL, Kafka and the bench: absolute figures "
        "are noisy, the ratio less so.",
    ]
    return result


CUSTOMER_COLUMNS = (
    "customer_id text, name text, cvr text, owner text, potential_dkk numeric(14, 2),"
    " annual_agreement_from date, annual_agreement_to date"
)
HISTORY_COLUMNS = (
    "external_id text, customer_id text, owner text, type text, channel text,"
    " held_at timestamptz, note text, subject text"
)


def _copy(
    location: StoreLocation, path: Path, name: str = "plain_import", columns: str = CUSTOMER_COLUMNS
) -> float:
    """Seconds to COPY the CSV into a fresh plain table with typed columns, no indexes."""
    plain = datasets.table(location, name)
    with datasets.connect(location) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(plain))
        conn.execute(sql.SQL("CREATE TABLE {} (" + columns + ")").format(plain))
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


class _Everyone:
    """A directory that knows every customer: the history's rows are all importable."""

    def get(self, customer_id: str) -> CustomerEntry | None:
        return CustomerEntry(customer_id, customer_id, "B", False)


def _history(ctx: Context, count: int, customers_count: int) -> dict[str, float]:
    path = ctx.work_dir / "history.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("external_id,customer_id,owner,type,channel,held_at,note,subject\n")
        for n in range(count):
            customer = customers.identity(n % customers_count)[0]
            out.write(
                f"old-{n:08d},{customer},konsulent{n % 60:02d}@example.dk,status_meeting,"
                f"phone,2025-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00+01:00,"
                f"Gennemgik status og næste skridt (møde {n}),Statusmøde\n"
            )
    with datasets.scratch_store(ctx, "history_import") as location:
        app = ActivityApplication(location.env(), directory=_Everyone())
        try:
            started = time.perf_counter()
            with path.open(encoding="utf-8", newline="") as lines:
                outcome = ActivityImport(app, SERVICE_ACTOR).run(lines)
            seconds = time.perf_counter() - started
        finally:
            app.close()
        if outcome.imported != count or outcome.rejected:
            raise RuntimeError(
                f"history import: {outcome.imported} of {count}, {outcome.rejected[:3]}"
            )
        copy_s = _copy(location, path, "plain_history", HISTORY_COLUMNS)
    return {"import_s": seconds, "copy_s": copy_s}
