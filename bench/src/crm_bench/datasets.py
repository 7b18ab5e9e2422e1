"""What the replay, re-segmentation and bulk-import benchmarks share: a scratch schema per
run, bulk loading of pre-encoded events, timing, and child processes measured for memory.

Loading goes around the applications on purpose: a million events saved one command at a
time would take longer than the whole `make bench` may. The events themselves still come
from the real aggregates and the application's own mapper (activity_log.py, customers.py), so
what the measured code reads is what the service would have written.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from crm_platform.eventstore import StoreLocation
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from psycopg import sql
from pyinstrument import Profiler

from crm_bench.core import Context

# Big enough that a COPY's round trips vanish, small enough that a batch of encoded events
# does not hold the loader's memory hostage.
COPY_CHUNK = 50_000


@contextmanager
def scratch_store(ctx: Context, service: str) -> Iterator[StoreLocation]:
    """A fresh schema `<run_id>_<service>`, dropped afterwards whatever happens.

    `RuntimeSettings.store()` does not apply `schema_prefix` (see the report), so the
    location is built here rather than through the settings.
    """
    location = StoreLocation(
        postgres_dsn=ctx.postgres_dsn, schema=f"{ctx.run_id}_{service}", pool_size=4
    )
    location.ensure_schema()
    try:
        yield location
    finally:
        drop_schema(location)


def drop_schema(location: StoreLocation) -> None:
    assert location.postgres_dsn is not None
    with psycopg.connect(location.postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(location.schema))
        )


def connect(location: StoreLocation) -> psycopg.Connection[Any]:
    assert location.postgres_dsn is not None
    return psycopg.connect(location.postgres_dsn, autocommit=True)


def table(location: StoreLocation, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(location.schema), sql.Identifier(name))


def copy_events(location: StoreLocation, events_table: str, events: Iterable[StoredEvent]) -> int:
    """COPY stored events into the application's events table, in the given (log) order.

    The `notification_id` sequence numbers them as the application's own inserts would.
    """
    count = 0
    statement = sql.SQL(
        "COPY {} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
    ).format(table(location, events_table))
    with connect(location) as conn, conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(["uuid", "int8", "text", "bytea"])
        for event in events:
            copy.write_row(
                (event.originator_id, event.originator_version, event.topic, event.state)
            )
            count += 1
    return count


@contextmanager
def indexes_deferred(location: StoreLocation, *tables: str) -> Iterator[None]:
    """Drops the tables' indexes and key constraints, and puts them back, exactly as they
    were (their own definitions), when the block is done: a bulk load into a table with
    random-uuid keys spends most of its time maintaining those indexes row by row."""
    names = [location.schema, list(tables)]
    with connect(location) as conn:
        constraints = conn.execute(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
            " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE n.nspname = %s AND c.conrelid::regclass::text = ANY("
            "  SELECT quote_ident(%s) || '.' || quote_ident(t) FROM unnest(%s::text[]) t)"
            " AND c.contype IN ('p', 'u')",
            [location.schema, *names],
        ).fetchall()
        indexes = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = %s"
            " AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
            "  JOIN pg_namespace n ON n.oid = c.connamespace"
            "  WHERE n.nspname = i.schemaname AND c.conname = i.indexname)",
            names,
        ).fetchall()
        for name, _ in indexes:
            conn.execute(
                sql.SQL("DROP INDEX {}.{}").format(*map(sql.Identifier, (location.schema, name)))
            )
        for relation, name, _ in constraints:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.SQL(relation), sql.Identifier(name)
                )
            )
    yield
    with connect(location) as conn:
        for relation, name, definition in constraints:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.SQL(relation), sql.Identifier(name), sql.SQL(definition)
                )
            )
        for _, definition in indexes:
            conn.execute(sql.SQL(definition))


def analyze(location: StoreLocation, *tables: str) -> None:
    """Planner statistics after a bulk load, as autovacuum would give them some time later."""
    with connect(location) as conn:
        for name in tables:
            conn.execute(sql.SQL("ANALYZE {}").format(table(location, name)))


def median_seconds(action: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """The median wall time of `repeats` calls, and every time measured."""
    times: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


@dataclass(frozen=True)
class ChildRun:
    """What a measured child process reported (its own JSON line) and its peak RSS."""

    report: dict[str, Any]
    peak_rss_mb: float
    wall_seconds: float
    cpu_seconds: float  # user + system of the child itself (not PostgreSQL's)


def run_child(task: str, *args: str) -> ChildRun:
    """Runs `python -m crm_bench.child <task> <args…>` and waits for it with `wait4` (its CPU
    time). Its peak RSS is the `VmHWM` the child reports of itself: `ru_maxrss` would not do,
    because Linux carries the parent's high-water mark over into a vforked child at exec, so
    it showed this (large) bench process's memory, not the child's."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "crm_bench.child", task, *args],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"crm_bench.child {task} exited with {process.returncode}")
    lines = [line for line in output.decode().splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"crm_bench.child {task} reported nothing")
    cpu = usage.ru_utime + usage.ru_stime
    report = json.loads(lines[-1])
    return ChildRun(report, float(report.pop("peak_rss_mb")), wall, cpu)


def save_profile(ctx: Context, profiler: Profiler, header: str, name: str) -> Path:
    """`<results>/profiles/<name>.txt`: the call tree (libraries folded), then the functions
    by self time."""
    tree = profiler.output_text(unicode=True, color=False)
    flat = profiler.output_text(unicode=True, color=False, flat=True).splitlines()
    text = f"{header}\n\n{tree}\n\nSelf time by function (top 40):\n" + "\n".join(flat[:48])
    target = ctx.results / "profiles" / f"{name}.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + "\n")
    return target


def events_table(app: Application[Any]) -> str:
    """The PostgreSQL events table of `app` (the base recorder type does not name it)."""
    recorder: Any = app.recorder
    return str(recorder.events_table_name)
