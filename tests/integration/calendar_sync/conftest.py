"""Fixtures for calendar-sync: its state on SQLite and on PostgreSQL, the Graph fake, Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from calendar_sync.settings import CalendarSyncSettings
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging.transport import KafkaTransport

from tests.fakes import GraphFake
from tests.integration.calendar_sync.support import Harness, unique_topics

# The activities of these tests sit in 2026: reconciliation's window must hold them whenever
# the tests run.
OPTIONS = CalendarSyncSettings(reconcile_days_back=3650, reconcile_days_ahead=3650)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    """Where the sync state lives: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return StoreLocation(sqlite_path=str(tmp_path / "calendar_sync.sqlite"))
    location = StoreLocation(
        postgres_dsn=request.getfixturevalue("postgres_dsn"),
        schema=request.getfixturevalue("pg_schema"),
    )
    location.ensure_schema()
    return location


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    with GraphFake(seed=7) as running:
        running.faults.retry_after = "0.01"
        yield running


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaTransport:
    return KafkaTransport(kafka_bootstrap, client_id="calendar-sync-tests")


@pytest.fixture
def harness(
    kafka: KafkaTransport,
    topic_factory: Callable[..., str],
    store: StoreLocation,
    fake: GraphFake,
    tmp_path: Path,
) -> Iterator[Harness]:
    """calendar-sync on Kafka with the Graph fake as Outlook, consumers running."""
    running = Harness.build(
        kafka, unique_topics(topic_factory), store, tmp_path, fake=fake, options=OPTIONS
    )
    running.start()
    yield running
    running.close()
