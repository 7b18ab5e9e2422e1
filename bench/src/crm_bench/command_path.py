"""Command path: plan, move and complete over HTTP against the activity API on PostgreSQL,
at 1, 8 and 32 concurrent clients, against a minimal FastAPI + psycopg insert as the baseline.

Both servers are children started the same way (`uvicorn.run(app, log_config=None)`, JSON
logs, the same CRM_POOL_SIZE); the activity API is `python -m activity serve --roles api`
with bearer tokens from the local issuer. Each client is its own consultant and every
iteration plans on a customer of its own, so the per-customer file (one aggregate per
customer, saved with every command) rarely sees two commands at once and 409s stay rare.
Each POST carries an Idempotency-Key, and move/complete an If-Match, as real clients do.

Rounds alternate subject and baseline at each concurrency, so a burst of load from elsewhere
on the shared machine hits both; req/s is the median of the rounds, percentiles are over the
latencies of all rounds together.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
from dataclasses import dataclass

from crm_bench import activity_client as body
from crm_bench.core import Context, Result
from crm_bench.identity import LocalIdentity, local_identity
from crm_bench.loadgen import Iteration, LoadResult, Tally, closed_loop, median, percentile
from crm_bench.processes import Child, Children, children, drop_schemas, free_port, service_env
from crm_bench.rawhttp import Connection

NAME = "command_path"
log = logging.getLogger(__name__)

CONCURRENCIES = (1, 8, 32)
POOL_SIZE = 10  # CRM_POOL_SIZE, the services' default
PROFILE_CONCURRENCY = 8


NOTES = [
    "iteration = POST /activities (201) → /move (200, If-Match) → /complete (200, If-Match), "
    "each with an Idempotency-Key; the baseline sends the same three bodies to POST /rows",
    "customers put into activity's directory with CustomerDirectory.apply_snapshot (the "
    "consumer's upsert) instead of the shared crm.customers.v1 topic; not prioritized (no R8)",
    "auth: RS256 bearer tokens of crm_devstack.issuer (JWKS served from the bench process), "
    "one consultant per client; the baseline checks no token",
    "load generator: crm_bench.rawhttp (0.2–0.4 ms CPU per request; httpx took 5–9 ms here, "
    "as much as the baseline server); server CPU ms/req from the server's /proc utime+stime",
]


@dataclass(frozen=True)
class Sizes:
    rounds: int
    seconds: float  # per round, per server, per concurrency
    warmup_seconds: float
    customers: int
    profile_seconds: float


def sizes(ctx: Context) -> Sizes:
    if ctx.quick:
        return Sizes(rounds=1, seconds=0.5, warmup_seconds=0.3, customers=150, profile_seconds=0)
    return Sizes(rounds=3, seconds=4.0, warmup_seconds=3.0, customers=2000, profile_seconds=10)


def customer_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}k{n}" for n in range(count)]


class Workload:
    """The iterations the clients run; customers are handed out in turn across all clients."""

    def __init__(self, prefix: str, customers: int, identity: LocalIdentity) -> None:
        self.customers = customer_ids(prefix, customers)
        self.owners = [f"konsulent{n}@bench.example" for n in range(max(CONCURRENCIES))]
        self.headers = [identity.bearer(owner) for owner in self.owners]
        self._turn = itertools.count()

    async def subject(self, client: Connection, worker: int, tally: Tally) -> None:
        turn = next(self._turn)
        auth = self.headers[worker]
        plan = body.plan_body(self.customers[turn % len(self.customers)], self.owners[worker], turn)
        planned = await tally.send(client, "/activities", plan, {**auth, **body.idempotency_key()})
        if planned is None or planned.status != 201:
            return
        path = planned.headers["location"]
        moved = await tally.send(
            client,
            f"{path}/move",
            body.move_body(plan),
            {**auth, "If-Match": planned.headers["etag"], **body.idempotency_key()},
        )
        if moved is None or moved.status != 200:
            return
        await tally.send(
            client,
            f"{path}/complete",
            body.COMPLETE_BODY,
            {**auth, "If-Match": moved.headers["etag"], **body.idempotency_key()},
        )

    async def baseline(self, client: Connection, worker: int, tally: Tally) -> None:
        turn = next(self._turn)
        auth = self.headers[worker]
        plan = body.plan_body(self.customers[turn % len(self.customers)], self.owners[worker], turn)
        for payload in (plan, body.move_body(plan), body.COMPLETE_BODY):
            await tally.send(client, "/rows", payload, {**auth, **body.idempotency_key()})


@dataclass
class Measured:
    """One server at one concurrency, over all rounds."""

    rounds: list[LoadResult]
    server_cpu_s: float = 0.0

    @property
    def latencies(self) -> list[float]:
        return [x for r in self.rounds for x in r.latencies]

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.rounds)

    def figures(self, concurrency: int) -> dict[str, float]:
        c = f"c{concurrency}"
        latencies = self.latencies
        return {
            f"{c} req/s": round(median([r.rps for r in self.rounds]), 1),
            f"{c} p50 ms": round(percentile(latencies, 50) * 1000, 2),
            f"{c} p99 ms": round(percentile(latencies, 99) * 1000, 2),
            f"{c} server CPU ms/req": round(self.server_cpu_s * 1000 / max(self.requests, 1), 2),
            f"{c} errors": sum(r.errors for r in self.rounds),
            f"{c} client cores": round(median([r.client_cores for r in self.rounds]), 2),
        }


def _measure(
    child: Child, iteration: Iteration, concurrency: int, seconds: float
) -> tuple[LoadResult, float]:
    """The clients' view, and the CPU seconds the server spent meanwhile."""
    cpu_before = child.cpu_seconds()
    result = closed_loop(child.port_number, concurrency, seconds, iteration)
    return result, child.cpu_seconds() - cpu_before


def _start_servers(
    ctx: Context, procs: Children, prefix: str, identity: LocalIdentity
) -> tuple[Child, Child]:
    env = service_env(ctx, prefix, CRM_POOL_SIZE=str(POOL_SIZE), **identity.env)
    api_port, base_port = free_port(), free_port()
    api = procs.start(
        "activity api",
        ["activity", "serve", "--roles", "api", "--port", str(api_port)],
        env,
        port=api_port,
    )
    baseline = procs.start(
        "baseline app", ["crm_bench.baseline_app", "--port", str(base_port)], env, port=base_port
    )
    procs.wait_http(api)
    procs.wait_http(baseline)
    return api, baseline


def run(ctx: Context) -> Result:
    size = sizes(ctx)
    prefix = f"{ctx.run_id}_cp_"
    result = Result(
        name=NAME,
        title="Command path: plan + move + complete over HTTP on PostgreSQL",
        params={
            "concurrencies": list(CONCURRENCIES),
            "rounds": size.rounds,
            "seconds_per_round": size.seconds,
            "warmup_seconds": size.warmup_seconds,
            "pool_size": POOL_SIZE,
            "customers": size.customers,
            "server": "uvicorn, 1 process, JSON logs (as `python -m activity serve --roles api`)",
        },
    )
    try:
        body.seed_customers(ctx.postgres_dsn, prefix, customer_ids(prefix, size.customers))
        with local_identity(ctx.work_dir) as identity, children(ctx, NAME) as procs:
            workload = Workload(prefix, size.customers, identity)
            api, baseline = _start_servers(ctx, procs, prefix, identity)
            for child, iteration in ((api, workload.subject), (baseline, workload.baseline)):
                warm = closed_loop(child.port_number, 8, size.warmup_seconds, iteration)
                log.info("warm-up %s: %.0f req/s, %s", child.label, warm.rps, warm.statuses)
            _compare(result, size, api, baseline, workload)
            result.notes += NOTES
            result.peak_rss_mb.update(procs.peak_rss())
            if size.profile_seconds:
                procs.stop(api)
                procs.stop(baseline)
                _profile(ctx, procs, prefix, identity, workload, size)
    finally:
        drop_schemas(ctx.postgres_dsn, prefix)
    return result


def _compare(result: Result, size: Sizes, api: Child, baseline: Child, workload: Workload) -> None:
    for concurrency in CONCURRENCIES:
        subject, floor = Measured([]), Measured([])
        for round_ in range(size.rounds):
            # Alternate who goes first, so drift in the machine's load favours neither.
            pairs = [(api, workload.subject, subject), (baseline, workload.baseline, floor)]
            for child, iteration, into in pairs if round_ % 2 == 0 else reversed(pairs):
                measured, server_cpu = _measure(child, iteration, concurrency, size.seconds)
                into.rounds.append(measured)
                into.server_cpu_s += server_cpu
        s, b = subject.figures(concurrency), floor.figures(concurrency)
        result.subject.update(s)
        result.baseline.update(b)
        c = f"c{concurrency}"
        result.ratios[f"req/s {c}"] = round(s[f"{c} req/s"] / b[f"{c} req/s"], 3)
        result.ratio_notes[f"req/s {c}"] = (
            f"activity req/s ÷ baseline req/s at {concurrency} client(s); ≥ 1 is better"
        )
        result.targets[f"req/s {c}"] = "≥ 0.5"
        result.ratios[f"p99 {c}"] = round(s[f"{c} p99 ms"] / b[f"{c} p99 ms"], 3)
        result.ratio_notes[f"p99 {c}"] = (
            f"activity p99 ÷ baseline p99 at {concurrency} client(s); ≤ 1 is better"
        )
        statuses = _statuses(subject.rounds)
        log.info("c%d: activity %s | baseline %s | answers %s", concurrency, s, b, statuses)
        result.notes.append(
            f"c{concurrency}: activity answers {statuses}; load generator used "
            f"{s[f'{c} client cores']:.2f} core(s) against activity, "
            f"{b[f'{c} client cores']:.2f} against the baseline (of {_cores()} shared)"
        )


def _statuses(rounds: list[LoadResult]) -> dict[int, int]:
    total: dict[int, int] = {}
    for r in rounds:
        for status, n in r.statuses.items():
            total[status] = total.get(status, 0) + n
    return dict(sorted(total.items()))


def _cores() -> int:
    return os.cpu_count() or 1


def _profile(
    ctx: Context,
    procs: Children,
    prefix: str,
    identity: LocalIdentity,
    workload: Workload,
    size: Sizes,
) -> None:
    """The activity API once more, under the all-threads sampler, at one concurrency."""
    out = ctx.results / "profiles" / f"{NAME}.txt"
    env = service_env(ctx, prefix, CRM_POOL_SIZE=str(POOL_SIZE), **identity.env)
    port = free_port()
    profiled = procs.start(
        "activity api (profiled)",
        ["activity", "serve", "--roles", "api", "--port", str(port)],
        env,
        port=port,
        profile_to=out,
    )
    procs.wait_http(profiled)
    closed_loop(profiled.port_number, PROFILE_CONCURRENCY, 2.0, workload.subject)
    os.kill(profiled.process.pid, signal.SIGUSR1)  # start-up and warm-up out of the profile
    load = closed_loop(
        profiled.port_number, PROFILE_CONCURRENCY, size.profile_seconds, workload.subject
    )
    procs.stop(profiled)
    log.info("profiled %d requests (%.0f req/s) into %s", load.requests, load.rps, out)
