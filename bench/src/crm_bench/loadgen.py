"""A closed-loop HTTP load generator (asyncio, crm_bench.rawhttp) and the figures it reports.

Closed loop: each of `concurrency` clients has its own keep-alive connection and sends its
next request when the previous one was answered, so req/s is what the server sustains at that
concurrency. The client shares the machine's cores with the server, so its own CPU time is
measured too: a client near one full core would be the bottleneck, not the server.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from crm_bench.rawhttp import Answer, Connection, HttpError


@dataclass
class Tally:
    """What one client saw: each request's latency and status."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    async def send(
        self,
        connection: Connection,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> Answer | None:
        """POST and count it; None (and counted as status 0) when the request failed."""
        started = time.perf_counter()
        try:
            answer = await connection.post(path, body, headers)
        except HttpError:
            self.statuses[0] += 1
            return None
        self.latencies.append(time.perf_counter() - started)
        self.statuses[answer.status] += 1
        return answer


# One iteration of one client: (its connection, the client's number, its tally).
Iteration = Callable[[Connection, int, Tally], Awaitable[None]]


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    seconds: float
    requests: int
    errors: int  # non-2xx answers and failed requests
    latencies: list[float]
    statuses: dict[int, int]
    client_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def client_cores(self) -> float:
        """The load generator's CPU use, in cores (1.0 = one core busy all the time)."""
        return self.client_cpu_s / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


async def _closed_loop(
    ports: Sequence[int],
    concurrency: int,
    seconds: float,
    iteration: Iteration,
) -> LoadResult:
    tallies = [Tally() for _ in range(concurrency)]
    connections = [Connection("127.0.0.1", ports[n % len(ports)]) for n in range(concurrency)]
    cpu_before, started = time.process_time(), time.perf_counter()
    deadline = started + seconds

    async def worker(number: int) -> None:
        while time.perf_counter() < deadline:
            await iteration(connections[number], number, tallies[number])

    try:
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    finally:
        for connection in connections:
            await connection.close()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    for tally in tallies:
        statuses.update(tally.statuses)
        latencies.extend(tally.latencies)
    errors = sum(n for status, n in statuses.items() if not 200 <= status < 300)
    return LoadResult(
        concurrency,
        elapsed,
        sum(statuses.values()),
        errors,
        latencies,
        dict(sorted(statuses.items())),
        cpu,
    )


def closed_loop(port: int, concurrency: int, seconds: float, iteration: Iteration) -> LoadResult:
    """Run `concurrency` clients against 127.0.0.1:`port` for `seconds` (each finishes the
    iteration it is in)."""
    return asyncio.run(_closed_loop([port], concurrency, seconds, iteration))


def closed_loop_over(
    ports: Sequence[int], concurrency: int, seconds: float, iteration: Iteration
) -> LoadResult:
    """`closed_loop` with the clients dealt out over several servers in turn (client n talks
    to `ports[n % len(ports)]`), as a load balancer would spread connections."""
    return asyncio.run(_closed_loop(ports, concurrency, seconds, iteration))
