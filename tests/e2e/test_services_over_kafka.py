"""Activity and segmentation running together over the real broker and PostgreSQL.

A potential change reaches the activity service's customer directory, and a completed status
meeting reaches the customer's attainment (how fast is printed, and measured in `make bench`).
Each service runs its real workers (relays, consumers) under its supervisor.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from activity.domain import CompletionRequest, PlanRequest
from activity.service import ActivityService
from crm_contracts.enums import ActivityType, Channel
from crm_platform.messaging.transport import KafkaTransport
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor
from segmentation.rules import local_date
from segmentation.service import SegmentationService

from tests.support.people import ANNA, MIA
from tests.support.polling import wait_until
from tests.support.schemas import drop_schemas


@dataclass
class System:
    activity: ActivityService
    segmentation: SegmentationService


@pytest.fixture
def system(postgres_dsn: str, kafka_bootstrap: str) -> Iterator[System]:
    prefix = f"e2e{uuid.uuid4().hex[:8]}_"
    settings = RuntimeSettings(
        postgres_dsn=postgres_dsn,
        kafka_bootstrap=kafka_bootstrap,
        schema_prefix=prefix,
        topic_prefix=f"{prefix}.",
        pool_size=4,
    )
    activity = ActivityService.build(
        settings, KafkaTransport(kafka_bootstrap, client_id="e2e-activity")
    )
    segmentation = SegmentationService.build(
        settings, KafkaTransport(kafka_bootstrap, client_id="e2e-segmentation")
    )
    supervisors = [
        Supervisor(activity.workers(["relay", "projector", "consumer"])),
        Supervisor(segmentation.workers(["relay", "recompute", "consumer"])),
    ]
    for supervisor in supervisors:
        supervisor.start()
    yield System(activity, segmentation)
    for supervisor in supervisors:
        supervisor.stop()
    activity.close()
    segmentation.close()
    drop_schemas(postgres_dsn, prefix)


def elapsed_until(probe: object, message: str, timeout: float = 60.0) -> float:
    started = time.monotonic()
    wait_until(probe, timeout=timeout, message=message)  # type: ignore[arg-type]
    return time.monotonic() - started


def test_potential_changes_and_completed_meetings_cross_services(
    system: System,
) -> None:
    seg, act = system.segmentation.app, system.activity
    customer_id = f"k-{uuid.uuid4().hex[:10]}"
    seg.register_customer(MIA, customer_id=customer_id, name="Bager Hansen ApS", owner=ANNA.user_id)
    seg.assess_potential(MIA, customer_id, amount=Decimal("400000"))

    def directory_shows(segment: str) -> bool:
        entry = act.directory.get(customer_id)
        return entry is not None and entry.segment == segment

    # The first crossing also waits for both consumer groups to get their partitions.
    elapsed_until(lambda: directory_shows("A"), "the first snapshot in the directory")
    seg.assess_potential(MIA, customer_id, amount=Decimal("50000"))
    took = elapsed_until(lambda: directory_shows("C"), "segment C in the directory")
    print(f"\npotential change → activity's directory: {took:.2f} s")
    entry = act.directory.get(customer_id)
    assert entry is not None
    assert entry.prioritized is False

    now = act.clock()
    start = now + timedelta(hours=2)
    planned = act.app.plan(
        ANNA,
        PlanRequest(
            customer_id,
            ANNA.user_id,
            ActivityType.STATUS_MEETING,
            Channel.PHONE,
            "Status",
            start,
            start + timedelta(hours=1),
        ),
    )
    year = local_date(now).year
    attainment = system.segmentation.attainment

    def status_meetings(kind: str) -> int:
        found = attainment.customer_attainment(customer_id, year, act.clock())
        if kind == "scheduled":
            return int(found.scheduled.get(ActivityType.STATUS_MEETING, 0))
        return found.attainment.lines[ActivityType.STATUS_MEETING].actual

    elapsed_until(lambda: status_meetings("scheduled") == 1, "the planned meeting scheduled")
    act.app.complete(
        ANNA,
        planned.activity.id,
        CompletionRequest(
            note="Kampagnen kører godt; vil udvide", next_step="Send tilbud på sommerkampagne"
        ),
    )
    took = elapsed_until(lambda: status_meetings("actual") == 1, "the completed meeting")
    print(f"completion → attainment: {took:.2f} s")
