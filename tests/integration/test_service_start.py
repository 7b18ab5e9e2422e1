"""Several processes of one service starting at once on a fresh PostgreSQL schema.

In production a service's API, relay and workers (and several API pods) start together; each
constructs its eventsourcing application, which (re)creates tables and functions. Without the
per-schema lock in `StoreLocation.creating` one of them dies with "tuple concurrently updated".
Threads stand in for processes: each builds its own connections, exactly as a process would.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from activity.service import ActivityService
from calendar_sync.service import CalendarSyncService
from crm_platform.messaging.transport import KafkaTransport
from crm_platform.settings import RuntimeSettings
from segmentation.service import SegmentationService

from tests.support.schemas import drop_schemas

STARTERS = 4
ROUNDS = 3

BUILDERS: dict[str, Callable[[RuntimeSettings, Any], Any]] = {
    "activity": ActivityService.build,
    "segmentation": SegmentationService.build,
    "calendar_sync": CalendarSyncService.build,
}


@pytest.fixture
def prefixes(postgres_dsn: str) -> Iterator[list[str]]:
    used: list[str] = []
    yield used
    for prefix in used:
        drop_schemas(postgres_dsn, prefix)


def start_together(
    service: str, settings: RuntimeSettings, kafka_bootstrap: str
) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(STARTERS)
    built: list[Any] = []
    failures: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            built.append(
                BUILDERS[service](settings, KafkaTransport(kafka_bootstrap, client_id="st"))
            )
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=start) for _ in range(STARTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return built, failures


@pytest.mark.parametrize("service", sorted(BUILDERS))
def test_processes_of_one_service_starting_together_all_come_up(
    service: str, postgres_dsn: str, kafka_bootstrap: str, prefixes: list[str]
) -> None:
    for _ in range(ROUNDS):
        prefix = f"st{uuid.uuid4().hex[:8]}_"
        prefixes.append(prefix)
        settings = RuntimeSettings(
            postgres_dsn=postgres_dsn, kafka_bootstrap=kafka_bootstrap, schema_prefix=prefix
        )
        built, failures = start_together(service, settings, kafka_bootstrap)
        for instance in built:
            instance.close()
        assert not failures, f"{len(failures)} of {STARTERS} starts failed: {failures[0]!r}"
        assert len(built) == STARTERS
