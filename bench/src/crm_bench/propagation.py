"""Propagation: an activity planned over HTTP until its event is in the owner's Outlook
calendar, against a raw Kafka produce → consume round trip on the same broker.

Subject path: POST /activities → activity's event store → relay (`--roles api,relay`, woken
in-process by the save) → `crm.activity.events.v1` → calendar-sync (`--roles consumer`) →
Microsoft Graph, played by the project's Graph fake in this process. A plan's latency runs
from just before its POST is sent to the moment the fake has stored the event (its store's
`create` is wrapped to note the time), both on this process's `perf_counter`.

Pacing: open loop at a steady rate; each plan is sent at its slot whatever the earlier ones
are doing, so a slow stretch shows in the latencies instead of thinning the load.

Baseline: kafka-python alone, paced the same way over the same count: a producer with the
settings of `crm_platform.messaging.kafka.KafkaPublisher` (acks=all, idempotent, linger 2 ms,
flush after each publish, as the relay does) and a consumer-group member with those of its
`KafkaConsumer` (manual commit after each batch), on a topic and group of this run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crm_contracts.topics import ACTIVITY_EVENTS
from crm_platform.messaging.kafka import ensure_topics
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata

from crm_bench import activity_client as body
from crm_bench.core import REPO, Context, Result
from crm_bench.identity import LocalIdentity, local_identity
from crm_bench.loadgen import percentile
from crm_bench.processes import (
    Child,
    Children,
    children,
    drop_schemas,
    free_port,
    service_env,
    topic_prefix,
)
from crm_bench.rawhttp import HttpError, Pool

if TYPE_CHECKING:
    from tests.fakes import GraphFake

NAME = "propagation"
log = logging.getLogger(__name__)

OWNERS = 20  # consultants (mailboxes): Graph limits concurrent requests per mailbox
# Plans go to these customers in turn: at the paced rates a customer comes round again only
# after many seconds, so plans never race on a customer file, and seeding stays short.
CUSTOMERS_IN_TURN = 250
ARRIVAL_TIMEOUT_S = 60.0
PROFILE_ARRIVAL_TIMEOUT_S = 8.0  # a profile needs the work done, not every last arrival


@dataclass(frozen=True)
class Sizes:
    count: int
    rate: float  # plans per second
    baseline_rate: float  # messages per second
    warmup: int
    profile_seconds: float


def sizes(ctx: Context) -> Sizes:
    """The subject's rate is what calendar-sync's one consumer sustains with room to spare on
    2 shared cores (at 20/s it was 56 % busy when profiled, and fell seconds behind whenever
    the machine was busy): a latency figure, not a capacity one. The baseline goes at twice
    the rate to fit the time budget; a raw round trip costs the same at either rate (p50
    10–13 ms at 20 and 25/s here), so this does not flatter it."""
    if ctx.quick:
        return Sizes(count=50, rate=25.0, baseline_rate=25.0, warmup=5, profile_seconds=0)
    return Sizes(count=1000, rate=12.5, baseline_rate=25.0, warmup=20, profile_seconds=6)


# --- the Graph fake ---------------------------------------------------------------------------


class Arrivals:
    """When the fake stored each activity's first event (`perf_counter`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.at: dict[str, float] = {}

    def watch(self, fake: GraphFake) -> None:
        create = fake.store.create

        def noted(mailbox: str, event: dict[str, Any]) -> Any:
            done = create(mailbox, event)
            now = time.perf_counter()
            for prop in event.get("singleValueExtendedProperties") or ():
                with self._lock:
                    self.at.setdefault(str(prop.get("value")), now)
            return done

        # Replaces the bound method on this one instance only; the fake's file is untouched.
        setattr(fake.store, "create", noted)  # noqa: B010

    def wait_for(self, ids: list[str], timeout: float) -> int:
        """Until every id arrived or `timeout`; returns how many are still missing."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                missing = sum(1 for i in ids if i not in self.at)
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.05)


@contextmanager
def graph_fake() -> Iterator[GraphFake]:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # tests/ is not an installed package
    from tests.fakes import GraphFake

    with GraphFake(seed=1) as fake:
        yield fake


def graph_env(fake: GraphFake) -> dict[str, str]:
    return {
        "GRAPH_TENANT_ID": fake.tenant,
        "GRAPH_CLIENT_ID": fake.client_id,
        "GRAPH_CLIENT_SECRET": fake.client_secret,
        "GRAPH_BASE_URL": fake.graph_url,
        "GRAPH_TOKEN_URL": fake.token_url,
    }


# --- Kafka ------------------------------------------------------------------------------------


class KafkaTap:
    """When each activity's first event reached `crm.activity.events.v1`, as seen by a
    consumer of this process: splits the path at the broker (relay side, calendar side)."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=True,
            auto_offset_reset="latest",
        )
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, name="kafka-tap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            batches = self._consumer.poll(timeout_ms=200)
            now = time.perf_counter()
            with self._lock:
                for records in batches.values():
                    for record in records:
                        if record.key is not None:
                            self.at.setdefault(record.key.decode(), now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._consumer.close()


# --- subject ----------------------------------------------------------------------------------


@dataclass
class Paced:
    """What an open-loop run sent: id → send time, and its refusals."""

    sent: dict[str, float]
    failed: int
    seconds: float
    answered: dict[str, float] | None = None  # id → when the 201 came (subject only)
    refusals: dict[int, int] | None = None  # status → count (0: no answer)


async def _plan_paced(
    port: int,
    count: int,
    rate: float,
    make: Callable[[int], tuple[dict[str, Any], dict[str, str]]],
) -> Paced:
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    refusals: dict[int, int] = {}
    pool = Pool("127.0.0.1", port)

    async def one(n: int) -> None:
        payload, headers = make(n)
        started = time.perf_counter()
        try:
            answer = await pool.post("/activities", payload, headers)
        except HttpError:
            refusals[0] = refusals.get(0, 0) + 1
            return
        if answer.status != 201:
            refusals[answer.status] = refusals.get(answer.status, 0) + 1
            log.warning("plan refused with %d: %s", answer.status, answer.content[:300])
            return
        activity_id = answer.headers["location"].rsplit("/", 1)[1]
        sent[activity_id], answered[activity_id] = started, time.perf_counter()

    began = time.perf_counter()
    tasks = []
    try:
        for n in range(count):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    finally:
        await pool.close()
    failed = sum(refusals.values())
    return Paced(sent, failed, time.perf_counter() - began, answered, refusals)


class Planner:
    def __init__(self, prefix: str, identity: LocalIdentity) -> None:
        self.prefix = prefix
        self.owners = [f"konsulent{n}@bench.example" for n in range(OWNERS)]
        self.headers = [identity.bearer(owner) for owner in self.owners]
        self.turn = 0

    def customers(self, count: int) -> list[str]:
        return [f"{self.prefix}k{n}" for n in range(count)]

    def plan(self, port: int, count: int, rate: float) -> Paced:
        first = self.turn
        self.turn += count

        def make(n: int) -> tuple[dict[str, Any], dict[str, str]]:
            turn = first + n
            owner = turn % OWNERS
            customer = f"{self.prefix}k{turn % CUSTOMERS_IN_TURN}"
            return (
                body.plan_body(customer, self.owners[owner], turn),
                {**self.headers[owner], **body.idempotency_key()},
            )

        return asyncio.run(_plan_paced(port, count, rate, make))


def _start_subject(
    ctx: Context,
    procs: Children,
    prefix: str,
    identity: LocalIdentity,
    fake: GraphFake,
    profile: bool = False,
) -> tuple[Child, Child]:
    api_port, sync_port = free_port(), free_port()
    profiles = ctx.results / "profiles"
    api = procs.start(
        "activity api+relay" + (" (profiled)" if profile else ""),
        ["activity", "serve", "--roles", "api,relay", "--port", str(api_port)],
        service_env(ctx, prefix, **identity.env),
        port=api_port,
        profile_to=profiles / f"{NAME}-activity.txt" if profile else None,
    )
    sync = procs.start(
        "calendar-sync consumer" + (" (profiled)" if profile else ""),
        ["calendar_sync", "serve", "--roles", "consumer", "--port", str(sync_port)],
        service_env(ctx, prefix, **graph_env(fake)),
        port=sync_port,
        profile_to=profiles / f"{NAME}-calendar-sync.txt" if profile else None,
    )
    procs.wait_http(api)
    procs.wait_http(sync)
    return api, sync


def _latencies(paced: Paced, arrivals: Arrivals) -> list[float]:
    return [arrivals.at[i] - t for i, t in paced.sent.items() if i in arrivals.at]


# --- baseline ---------------------------------------------------------------------------------


class RoundTrip:
    """Raw kafka-python: paced produce on one side, a consumer-group member on the other."""

    def __init__(self, bootstrap: str, run_id: str) -> None:
        self.bootstrap = bootstrap
        self.topic = f"{run_id}.bench.roundtrip"
        self.group = f"{run_id}-bench-roundtrip"
        self.received: dict[str, float] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        ensure_topics(bootstrap, {self.topic: 3})  # as many partitions as the activity topic
        # The settings of crm_platform.messaging.kafka.KafkaPublisher.
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="bench-roundtrip",
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            delivery_timeout_ms=120_000,
            request_timeout_ms=30_000,
        )
        self._thread = threading.Thread(target=self._consume, name="roundtrip", daemon=True)
        self._thread.start()

    def _consume(self) -> None:
        # The settings of crm_platform.messaging.kafka.KafkaConsumer.
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id="bench-roundtrip",
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=200,
        )
        consumer.partitions_for_topic(self.topic)
        consumer.subscribe([self.topic])
        try:
            while not self._stop.is_set():
                batches = consumer.poll(timeout_ms=500)
                if consumer.assignment():
                    self._ready.set()
                for tp, records in batches.items():
                    now = time.perf_counter()
                    with self._lock:
                        for record in records:
                            self.received.setdefault(record.key.decode(), now)
                    consumer.commit({tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)})
        finally:
            consumer.close(autocommit=False)

    def run(self, count: int, rate: float) -> Paced:
        sent: dict[str, float] = {}
        began = time.perf_counter()
        for n in range(count):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            key = str(uuid.uuid4())
            value = json.dumps({"activity_id": key, "n": n, "pad": "x" * 600}).encode()
            sent[key] = time.perf_counter()
            future = self.producer.send(self.topic, key=key.encode(), value=value)
            self.producer.flush(timeout=30)
            future.get(timeout=30)
        return Paced(sent, 0, time.perf_counter() - began)

    def wait_for(self, ids: list[str], timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                missing = sum(1 for i in ids if i not in self.received)
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not self._ready.wait(timeout):
            raise RuntimeError(f"no partitions of {self.topic} assigned in {timeout} s")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.producer.close(timeout=10)
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="bench-admin")
        try:
            admin.delete_topics([self.topic])
        except Exception as error:  # a leftover is harmless: unique names per run
            log.warning("could not delete %s: %s", self.topic, error)
        finally:
            admin.close()


def _baseline(ctx: Context, size: Sizes) -> tuple[list[float], Paced, int]:
    trip = RoundTrip(ctx.kafka_bootstrap, ctx.run_id)
    try:
        trip.wait_ready()
        warm = trip.run(size.warmup, size.baseline_rate)
        trip.wait_for(list(warm.sent), ARRIVAL_TIMEOUT_S)
        paced = trip.run(size.count, size.baseline_rate)
        missing = trip.wait_for(list(paced.sent), ARRIVAL_TIMEOUT_S)
        latencies = [trip.received[k] - t for k, t in paced.sent.items() if k in trip.received]
        return latencies, paced, missing
    finally:
        trip.close()


# --- the benchmark ----------------------------------------------------------------------------


def _figures(
    latencies: list[float],
    paced: Paced,
    missing: int,
    arrived: dict[str, float] | None = None,
    on_kafka: dict[str, float] | None = None,
) -> dict[str, float]:
    figures = {
        "p50 ms": _ms(percentile(latencies, 50)),
        "p99 ms": _ms(percentile(latencies, 99)),
        "max ms": _ms(max(latencies, default=0.0)),
        "delivered": len(latencies),
        "lost or refused": missing + paced.failed,
        "sent per s": round(len(paced.sent) / paced.seconds, 1) if paced.seconds else 0.0,
    }
    if paced.answered is not None:
        # Where the time goes, every split from the same origin (the send), since the
        # percentiles of differences would mix the tails of different steps.
        figures["send→201 p50 ms"] = _ms(percentile(_since_sent(paced, paced.answered), 50))
        figures["send→201 p99 ms"] = _ms(percentile(_since_sent(paced, paced.answered), 99))
    if on_kafka:
        figures["send→on Kafka p50 ms"] = _ms(percentile(_since_sent(paced, on_kafka), 50))
        figures["send→on Kafka p99 ms"] = _ms(percentile(_since_sent(paced, on_kafka), 99))
        if arrived is not None:
            # calendar-sync's own share, per activity: from the tap seeing the message to the
            # fake storing the event (the tap polls too, so this is a little short).
            consumer = [
                arrived[i] - on_kafka[i] for i in paced.sent if i in arrived and i in on_kafka
            ]
            figures["on Kafka→Outlook p50 ms"] = _ms(percentile(consumer, 50))
            figures["on Kafka→Outlook p99 ms"] = _ms(percentile(consumer, 99))
    if arrived is not None and latencies:
        slow = sorted(
            ((arrived[i] - t, t) for i, t in paced.sent.items() if i in arrived), reverse=True
        )
        began = min(paced.sent.values())
        over = sum(1 for latency in latencies if latency > 1.0)
        figures["over 1 s"] = over
        figures["slowest at s"] = round(slow[0][1] - began, 1)
    return figures


def _since_sent(paced: Paced, at: dict[str, float]) -> list[float]:
    return [at[i] - t for i, t in paced.sent.items() if i in at]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def run(ctx: Context) -> Result:
    size = sizes(ctx)
    prefix = f"{ctx.run_id}_pg_"
    result = Result(
        name=NAME,
        title="Propagation: planned over HTTP → relay → Kafka → calendar-sync → Graph (fake)",
        params={
            "activities": size.count,
            "rate_per_s": size.rate,
            "baseline_rate_per_s": size.baseline_rate,
            "pacing": "open loop: one plan (message) every 1/rate s, whatever came before",
            "warmup": size.warmup,
            "consultants": OWNERS,
        },
    )
    try:
        with local_identity(ctx.work_dir) as identity, graph_fake() as fake:
            planner = Planner(prefix, identity)
            body.seed_customers(ctx.postgres_dsn, prefix, planner.customers(CUSTOMERS_IN_TURN))
            arrivals = Arrivals()
            arrivals.watch(fake)
            tap = KafkaTap(
                ctx.kafka_bootstrap, f"{prefix}bench-tap", topic_prefix(prefix) + ACTIVITY_EVENTS
            )
            try:
                with children(ctx, NAME) as procs:
                    api, _sync = _start_subject(ctx, procs, prefix, identity, fake)
                    # Also waits out calendar-sync's first join of its consumer group.
                    warm = planner.plan(api.port_number, size.warmup, size.rate)
                    arrivals.wait_for(list(warm.sent), ARRIVAL_TIMEOUT_S)
                    log.info(
                        "warm: %d of %d in Outlook", len(_latencies(warm, arrivals)), size.warmup
                    )
                    paced = planner.plan(api.port_number, size.count, size.rate)
                    missing = arrivals.wait_for(list(paced.sent), ARRIVAL_TIMEOUT_S)
                    subject = _latencies(paced, arrivals)
                    figures = _figures(subject, paced, missing, arrivals.at, tap.at)
                    log.info("subject: %s; refused: %s", figures, paced.refusals)
                    result.peak_rss_mb.update(procs.peak_rss())
                    procs.stop_all()
                    if size.profile_seconds:
                        _profile(ctx, procs, prefix, identity, fake, planner, arrivals, size)
            finally:
                tap.close()
        base_latencies, base_paced, base_missing = _baseline(ctx, size)
        log.info("baseline: %s", _figures(base_latencies, base_paced, base_missing))
    finally:
        drop_schemas(ctx.postgres_dsn, prefix)
    result.subject = figures
    result.baseline = _figures(base_latencies, base_paced, base_missing)
    for q in ("p50", "p99"):
        result.ratios[q] = round(result.subject[f"{q} ms"] / result.baseline[f"{q} ms"], 2)
        result.ratio_notes[q] = f"plan→Outlook {q} ÷ raw Kafka round-trip {q}; ≤ 1 is better"
    result.targets["p99"] = "≤ 3"
    result.notes.append(
        "subject: from sending POST /activities to the Graph fake storing the event; "
        "baseline: from producer.send to the consumer's poll returning the record"
    )
    result.notes.append(
        "subject split: "
        + ", ".join(f"{k} {v}" for k, v in figures.items() if "→" in k)
        + " ('on Kafka': seen by a consumer in the bench process, so a little late); "
        f"{figures.get('over 1 s', 0)} took over 1 s, the slowest sent "
        f"{figures.get('slowest at s', 0)} s into the run"
    )
    if paced.refusals:
        result.notes.append(f"plans refused, by status (0: no answer): {paced.refusals}")
    return result


def _profile(
    ctx: Context,
    procs: Children,
    prefix: str,
    identity: LocalIdentity,
    fake: GraphFake,
    planner: Planner,
    arrivals: Arrivals,
    size: Sizes,
) -> None:
    """Both services once more under the all-threads sampler, at the same pace."""
    api, sync = _start_subject(ctx, procs, prefix, identity, fake, profile=True)
    warm = planner.plan(api.port_number, size.warmup // 2, size.rate)
    arrivals.wait_for(list(warm.sent), ARRIVAL_TIMEOUT_S)
    for child in (api, sync):
        os.kill(child.process.pid, signal.SIGUSR1)  # start-up and warm-up out of the profile
    paced = planner.plan(api.port_number, int(size.profile_seconds * size.rate), size.rate)
    arrivals.wait_for(list(paced.sent), PROFILE_ARRIVAL_TIMEOUT_S)
    procs.stop_all()
    parts = [ctx.results / "profiles" / f"{NAME}-{s}.txt" for s in ("activity", "calendar-sync")]
    combined = "\n\n".join(p.read_text() for p in parts if p.exists())
    (ctx.results / "profiles" / f"{NAME}.txt").write_text(combined)
    for part in parts:
        part.unlink(missing_ok=True)
