"""Fixtures for the segmentation service, each test run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from crm_platform.eventstore import StoreLocation
from eventsourcing.utils import get_topic
from segmentation.application import SegmentationApplication
from segmentation.domain import Customer
from segmentation.recompute_worker import RecomputeRunner

from tests.support.clock import ManualClock


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    """Where the service keeps its events: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return StoreLocation(sqlite_path=str(tmp_path / "segmentation.sqlite"))
    location = StoreLocation(
        postgres_dsn=request.getfixturevalue("postgres_dsn"),
        schema=request.getfixturevalue("pg_schema"),
    )
    location.ensure_schema()
    return location


@pytest.fixture
def env(store: StoreLocation) -> dict[str, str]:
    return store.env()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()  # 2026-03-02 08:00 UTC


@pytest.fixture
def app(env: dict[str, str], clock: ManualClock) -> Iterator[SegmentationApplication]:
    application = SegmentationApplication(env, clock=clock)
    yield application
    application.close()


@pytest.fixture
def runner(app: SegmentationApplication) -> RecomputeRunner:
    return RecomputeRunner(app, batch_size=500, retry_pause=0.0)


CountEvents = Callable[..., Counter[UUID]]


@pytest.fixture
def count_events(app: SegmentationApplication) -> CountEvents:
    """`count_events(EventClass=Customer.SegmentChanged)`: how many events of that type each
    customer has, read from the notification log (what the relay and projections see)."""

    def count(event: type = Customer.SegmentChanged) -> Counter[UUID]:
        counts: Counter[UUID] = Counter()
        start = 1
        while True:
            page = app.recorder.select_notifications(
                start=start, limit=5000, topics=[get_topic(event)], inclusive_of_start=True
            )
            if not page:
                return counts
            counts.update(n.originator_id for n in page)
            start = page[-1].id + 1

    return count
