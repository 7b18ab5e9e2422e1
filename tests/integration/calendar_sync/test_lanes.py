"""Mailbox lanes: one holder per mailbox across services, throttling pauses the mailbox (capped)
and never the consumer, the request budget carries over between holders and keeps the fake's
10,000-per-window limit from ever answering 429."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from calendar_sync.settings import CalendarSyncSettings
from calendar_sync.state import MailboxState
from crm_contracts.enums import SyncStatus
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging import Delivery
from crm_platform.messaging.transport import KafkaTransport

from tests.fakes import FakeClock, GraphFake
from tests.integration.calendar_sync.support import (
    ANNA,
    BO,
    Activity,
    Harness,
    activity_ids,
    tagged,
    unique_topics,
)
from tests.support.polling import wait_until


@pytest.fixture
def fast_fake() -> Iterator[GraphFake]:
    """The fake on a clock 1000 times faster: Outlook's minutes pass in a test's moments."""
    with GraphFake(seed=3, clock=FakeClock(scale=1000)) as fake:
        yield fake


def build(
    kafka: KafkaTransport,
    topics: object,
    store: StoreLocation,
    tmp_path: Path,
    fake: GraphFake,
    **options: object,
) -> Harness:
    settings = CalendarSyncSettings(consumers=1, **options)  # type: ignore[arg-type]
    return Harness.build(kafka, topics, store, tmp_path, fake=fake, options=settings)  # type: ignore[arg-type]


def test_two_services_never_work_one_mailbox_at_once(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    fast_fake: GraphFake,
    tmp_path: Path,
) -> None:
    fast_fake.faults.latency = 0.01  # requests overlap if two holders ever work one mailbox
    topics = unique_topics(topic_factory, partitions=4)
    with ExitStack() as stack:
        services = []
        for n in range(2):
            service = build(kafka, topics, store, tmp_path / f"pod-{n}", fast_fake, lane_workers=3)
            stack.callback(service.close)
            services.append(service.start())
        activities = [Activity(owner=(ANNA, BO)[n % 2]) for n in range(40)]
        services[0].send(*(a.planned() for a in activities))
        for activity in activities:
            services[1].applied(activity, timeout=60)
        counted = Counter(activity_ids(tagged(fast_fake, ANNA) + tagged(fast_fake, BO)))
        assert counted == Counter({str(a.id): 1 for a in activities})
        # Six lane workers in two services, two mailboxes: one request at a time per mailbox.
        assert fast_fake.max_concurrency_seen(ANNA) == 1
        assert fast_fake.max_concurrency_seen(BO) == 1


def test_throttling_pauses_the_mailbox_never_the_consumer(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    fast_fake: GraphFake,
    tmp_path: Path,
) -> None:
    harness = build(kafka, unique_topics(topic_factory), store, tmp_path, fast_fake).start()
    try:
        first = Activity()
        harness.send(first.planned())
        harness.applied(first)
        fast_fake.faults.retry_after_range = (120, 120)  # two minutes: 0.12 s of ours
        fast_fake.faults.fail_next("throttle", mailbox=ANNA)
        annas = [Activity() for _ in range(5)]
        bos = [Activity(owner=BO) for _ in range(5)]
        harness.send(*(a.planned() for a in annas))
        paused = wait_until(
            lambda: (
                (m := harness.service.state.mailbox(ANNA)) is not None
                and m.reason == "throttled"
                and m
            ),
            message="Anna's mailbox paused",
        )
        assert paused.paused_until is not None
        pause = (paused.paused_until - harness.service.clock()).total_seconds()
        assert pause <= 120
        # Meanwhile the consumer goes on: Anna's activities are staged, Bo's written.
        harness.send(*(a.planned() for a in bos))
        for activity in bos:
            assert harness.applied(activity).status is SyncStatus.SYNCED
        for activity in annas:
            assert harness.staged(activity).version == 1
        # Once the pause is over the mailbox is asked again, and nothing was lost.
        for activity in annas:
            assert harness.applied(activity, timeout=30).status is SyncStatus.SYNCED
        blocked = [r for r in fast_fake.requests(ANNA) if r.outcome == "blocked"]
        assert blocked == []  # nobody asked before Graph's Retry-After had passed
        assert harness.service.metrics.pauses.labels("throttled")._value.get() >= 1
    finally:
        harness.close()


def test_an_outlandish_retry_after_is_capped(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    fast_fake: GraphFake,
    tmp_path: Path,
) -> None:
    harness = build(
        kafka, unique_topics(topic_factory), store, tmp_path, fast_fake, retry_after_cap_seconds=900
    ).start()
    try:
        fast_fake.faults.retry_after_range = (36_000, 36_000)  # ten hours
        fast_fake.faults.enforce_retry_after = False  # Graph meant it less than it said
        fast_fake.faults.fail_next("throttle", mailbox=ANNA)
        act = Activity()
        harness.send(act.planned())
        paused = wait_until(
            lambda: (
                (m := harness.service.state.mailbox(ANNA)) is not None
                and m.reason == "throttled"
                and m
            ),
            message="Anna's mailbox paused",
        )
        assert paused.paused_until is not None
        assert (paused.paused_until - harness.service.clock()).total_seconds() <= 900
        assert harness.applied(act, timeout=30).status is SyncStatus.SYNCED
    finally:
        harness.close()


def test_the_request_budget_keeps_the_window_limit_from_answering(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    tmp_path: Path,
) -> None:
    # Outlook's 10,000 per 10 minutes, scaled down: 8 per minute on the fake and in the lanes,
    # on a clock slow enough (0.6 s a minute) that 24 requests cannot avoid the limit.
    fast_fake = GraphFake(seed=3, clock=FakeClock(scale=100)).start()
    fast_fake.faults.requests_per_window = 8
    fast_fake.faults.window_seconds = 60.0
    topics = unique_topics(topic_factory)
    with ExitStack() as stack:
        stack.callback(fast_fake.stop)
        services = []
        for n in range(2):  # the budget is the mailbox's, whichever service holds the lane
            service = build(
                kafka,
                topics,
                store,
                tmp_path / f"pod-{n}",
                fast_fake,
                request_budget=8,
                budget_window_seconds=60.0,
            )
            stack.callback(service.close)
            services.append(service.start())
        activities = [Activity() for _ in range(12)]  # a look and a create each: 24 requests
        services[0].send(*(a.planned() for a in activities))
        for activity in activities:
            assert services[0].applied(activity, timeout=60).status is SyncStatus.SYNCED
        outcomes = Counter(r.outcome for r in fast_fake.requests(ANNA))
        assert outcomes["request_limited"] == 0, outcomes
        assert sum(s.service.metrics.pauses.labels("budget")._value.get() for s in services) >= 1
        lane = services[0].service.state.mailbox(ANNA)
        assert lane is not None
        assert sum(lane.budget.values()) > 0  # carried in the lane for the next holder
        assert len(tagged(fast_fake, ANNA)) == 12


def test_a_lane_whose_holder_died_is_taken_over_after_its_lease(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    fast_fake: GraphFake,
    tmp_path: Path,
) -> None:
    harness = build(
        kafka, unique_topics(topic_factory), store, tmp_path, fast_fake, lease_seconds=1.0
    )
    state = harness.service.state
    wall = harness.service.lanes.wall
    # A holder that claimed Anna's lane and died without a word.
    dead = state.claim(
        ANNA,
        "dead-pod",
        lease_until=wall() + timedelta(seconds=1),
        wall=wall(),
        now=harness.service.clock(),
    )
    assert dead is not None
    harness.start()
    try:
        act = Activity()
        harness.send(act.planned())
        assert harness.applied(act, timeout=30).status is SyncStatus.SYNCED
        lane = state.mailbox(ANNA)
        assert lane is not None
        assert lane.holder != "dead-pod"
    finally:
        harness.close()


def test_a_first_create_posts_without_looking_and_the_lane_is_kept_for_the_next(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    fast_fake: GraphFake,
    tmp_path: Path,
) -> None:
    harness = build(
        kafka, unique_topics(topic_factory), store, tmp_path, fast_fake, lane_linger_seconds=60
    )
    state = harness.service.state
    claims: list[str] = []
    claim = state.claim

    def counted(mailbox: str, holder: str, **kwargs: Any) -> MailboxState | None:
        claims.append(mailbox)
        return claim(mailbox, holder, **kwargs)

    state.claim = counted  # type: ignore[method-assign]
    harness.start()
    try:
        first, second = Activity(), Activity()
        harness.send(first.planned())
        assert harness.applied(first).status is SyncStatus.SYNCED
        # Nothing was ever sent for it: no look for a tagged event, one POST.
        assert [r.method for r in fast_fake.requests(ANNA)] == ["POST"]
        lane = state.mailbox(ANNA)
        assert lane is not None
        assert lane.holder == harness.service.lanes.token  # kept for the next message
        harness.send(second.planned())
        assert harness.applied(second).status is SyncStatus.SYNCED
        assert claims == [ANNA]  # written without taking the lane again
        assert activity_ids(tagged(fast_fake, ANNA)) == [str(first.id), str(second.id)]
        harness.stop()  # a stopping process gives its lanes back
        lane = state.mailbox(ANNA)
        assert lane is not None
        assert lane.holder is None
    finally:
        harness.close()


def test_an_idle_lane_is_given_back_after_its_linger(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    fast_fake: GraphFake,
    tmp_path: Path,
) -> None:
    harness = build(
        kafka, unique_topics(topic_factory), store, tmp_path, fast_fake, lane_linger_seconds=0.2
    ).start()
    try:
        activity = Activity()
        harness.send(activity.planned())
        harness.applied(activity)
        wait_until(
            lambda: (m := harness.service.state.mailbox(ANNA)) is not None and m.holder is None,
            message="Anna's lane given back",
        )
    finally:
        harness.close()


def test_work_saved_by_another_process_is_announced_to_the_lane_that_keeps_the_mailbox(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    postgres_dsn: str,
    pg_schema: str,
    fast_fake: GraphFake,
    tmp_path: Path,
) -> None:
    # NOTIFY is PostgreSQL's; on SQLite the service runs in one process.
    store = StoreLocation(postgres_dsn=postgres_dsn, schema=pg_schema)
    store.ensure_schema()
    topics = unique_topics(topic_factory)
    # The lanes would not look by themselves for a minute: only the announcement can wake them.
    writer = build(
        kafka,
        topics,
        store,
        tmp_path / "writer",
        fast_fake,
        lane_linger_seconds=60,
        lane_idle_poll_seconds=60,
    ).start()
    other = build(kafka, topics, store, tmp_path / "other", fast_fake)  # consumes, never started
    try:
        handle = other.service.activity_handler().handle
        for n, activity in enumerate([Activity(), Activity(owner=BO), Activity()]):
            handle(other.wire(activity.planned()), Delivery(topics.activities, 0, n))
            assert writer.applied(activity, timeout=20).status is SyncStatus.SYNCED
        assert len(tagged(fast_fake, ANNA)) == 2
        assert len(tagged(fast_fake, BO)) == 1
    finally:
        other.close()
        writer.close()
