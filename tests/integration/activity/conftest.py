"""Fixtures for the activity service, each test run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from activity.application import ActivityApplication
from activity.consumers import CustomerDirectory
from activity.projections import ActivityReadModel
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import Segment
from crm_platform.eventstore import StoreLocation

from tests.support.clock import ManualClock

PRIORITIZED = frozenset({Segment.ANNUAL_AGREEMENT, Segment.A, Segment.B})


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    """Where the service keeps its events: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return StoreLocation(sqlite_path=str(tmp_path / "activity.sqlite"))
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
    return ManualClock()


@pytest.fixture
def directory(env: dict[str, str]) -> Iterator[CustomerDirectory]:
    view = CustomerDirectory(env)
    yield view
    view.close()


@pytest.fixture
def app(
    env: dict[str, str], directory: CustomerDirectory, clock: ManualClock
) -> Iterator[ActivityApplication]:
    application = ActivityApplication(env, directory=directory, clock=clock)
    yield application
    application.close()


@pytest.fixture
def add_customer(directory: CustomerDirectory) -> Callable[..., CustomerSnapshot]:
    """Put a customer in the directory, as a snapshot from segmentation would."""
    versions: dict[str, int] = {}

    def add(
        customer_id: str, name: str = "Bager Hansen ApS", segment: Segment = Segment.C
    ) -> CustomerSnapshot:
        versions[customer_id] = versions.get(customer_id, 0) + 1
        snapshot = CustomerSnapshot(
            customer_id=customer_id,
            name=name,
            segment=segment,
            prioritized=segment in PRIORITIZED,
            version=versions[customer_id],
            updated_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="segmentation",
        )
        directory.apply_snapshot(snapshot)
        return snapshot

    return add


@pytest.fixture
def read_model(env: dict[str, str]) -> Iterator[ActivityReadModel]:
    """The activity read models in the test's store (fed by whoever the test runs)."""
    view = ActivityReadModel(env)
    yield view
    view.close()
