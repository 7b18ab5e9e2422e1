"""Command path, scaled out: the same load against one activity API process and against two on
the same database, to show the design grows with the number of processes (machines), not
only with the size of one.

Each API process is `python -m activity serve --roles api`, as in production; the clients
(the command path's iterations: plan, move, complete) are dealt out over the processes in turn,
as a load balancer spreads connections. The ratio is the two processes' req/s over the one
process's, in the same run, rounds alternating so drift in the machine's load favours neither.

On this 2-core machine the two API processes share the cores with PostgreSQL and the load
generator, so the ratio is a floor: one Python process is bound to a core by its interpreter
lock, and the second process can only use what PostgreSQL leaves of the other core.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from crm_bench import activity_client as body
from crm_bench.command_path import Workload, customer_ids
from crm_bench.core import Context, Result
from crm_bench.identity import local_identity
from crm_bench.loadgen import LoadResult, closed_loop_over, median, percentile
from crm_bench.processes import Child, children, drop_schemas, free_port, service_env

NAME = "command_scaleout"
log = logging.getLogger(__name__)

POOL_SIZE = 10
CONCURRENCY = 16


@dataclass(frozen=True)
class Sizes:
    rounds: int
    seconds: float
    warmup_seconds: float
    customers: int


def sizes(ctx: Context) -> Sizes:
    if ctx.quick:
        return Sizes(rounds=1, seconds=0.5, warmup_seconds=0.3, customers=150)
    return Sizes(rounds=3, seconds=5.0, warmup_seconds=3.0, customers=2000)


def run(ctx: Context) -> Result:
    size = sizes(ctx)
    prefix = f"{ctx.run_id}_so_"
    result = Result(
        name=NAME,
        title="Command path scaled out: one API process against two on the same database",
        params={
            "concurrency": CONCURRENCY,
            "rounds": size.rounds,
            "seconds_per_round": size.seconds,
            "pool_size": POOL_SIZE,
            "customers": size.customers,
            "server": "uvicorn, `python -m activity serve --roles api` per process",
        },
    )
    try:
        body.seed_customers(ctx.postgres_dsn, prefix, customer_ids(prefix, size.customers))
        with local_identity(ctx.work_dir) as identity, children(ctx, NAME) as procs:
            workload = Workload(prefix, size.customers, identity)
            env = service_env(ctx, prefix, CRM_POOL_SIZE=str(POOL_SIZE), **identity.env)
            apis: list[Child] = []
            for n in range(2):
                port = free_port()
                api = procs.start(
                    f"activity api {n + 1}",
                    ["activity", "serve", "--roles", "api", "--port", str(port)],
                    env,
                    port=port,
                )
                procs.wait_http(api)  # one at a time: the first creates the schema
                apis.append(api)
            ports = [api.port_number for api in apis]
            closed_loop_over(ports, CONCURRENCY, size.warmup_seconds, workload.subject)
            one: list[LoadResult] = []
            two: list[LoadResult] = []
            for round_ in range(size.rounds):
                order = [(ports[:1], one), (ports, two)]
                for targets, into in order if round_ % 2 == 0 else reversed(order):
                    into.append(
                        closed_loop_over(targets, CONCURRENCY, size.seconds, workload.subject)
                    )
            _report(result, one, two)
            result.peak_rss_mb.update(procs.peak_rss())
    finally:
        drop_schemas(ctx.postgres_dsn, prefix)
    return result


def _figures(label: str, rounds: list[LoadResult]) -> dict[str, float]:
    latencies = [x for r in rounds for x in r.latencies]
    return {
        f"{label} req/s": round(median([r.rps for r in rounds]), 1),
        f"{label} p50 ms": round(percentile(latencies, 50) * 1000, 2),
        f"{label} p99 ms": round(percentile(latencies, 99) * 1000, 2),
        f"{label} errors": sum(r.errors for r in rounds),
    }


def _report(result: Result, one: list[LoadResult], two: list[LoadResult]) -> None:
    single, double = _figures("1 process", one), _figures("2 processes", two)
    result.baseline.update(single)
    result.subject.update(double)
    result.ratios["2 processes / 1"] = round(
        double["2 processes req/s"] / single["1 process req/s"], 3
    )
    result.ratio_notes["2 processes / 1"] = (
        "req/s with two API processes ÷ req/s with one, same clients and database; "
        "2 would be perfect scaling, ≥ 1 is better"
    )
    result.notes += [
        f"{CONCURRENCY} clients in a closed loop (plan → move → complete, each with an "
        "Idempotency-Key and If-Match), dealt out over the processes in turn",
        "2 cores shared by both API processes, PostgreSQL and the load generator: the second "
        "process gets what PostgreSQL and the first leave of the machine, so the ratio is a "
        "floor for two machines (see docs/capacity.md)",
    ]
    log.info("scale-out: 1 process %s | 2 processes %s", single, double)
