"""Commands under an Idempotency-Key through the activity Application, on both stores."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from datetime import timedelta
from typing import Any

import pytest
from activity.application import ActivityApplication, Outcome
from activity.domain import PlanRequest
from crm_contracts.enums import ActivityType, Channel, MoveReason, Segment
from crm_platform.errors import DomainError
from crm_platform.idempotency import IdempotencyKey, IdempotencyKeyReused

from tests.support.clock import ManualClock
from tests.support.people import ANNA, MIA

CUSTOMER = "c-400"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
THREADS = 8


@pytest.fixture(autouse=True)
def customer(add_customer: Callable[..., Any]) -> str:
    add_customer(CUSTOMER, "Cykelhandler Petersen", Segment.C)
    return CUSTOMER


def request(
    clock: ManualClock, in_: timedelta = DAY, subject: str = "Sommerkampagne"
) -> PlanRequest:
    starts = clock.now + in_
    return PlanRequest(
        customer_id=CUSTOMER,
        owner=ANNA.user_id,
        type=ActivityType.SALES_MEETING,
        channel=Channel.VIDEO,
        subject=subject,
        starts_at=starts,
        ends_at=starts + HOUR,
    )


def key(name: str, *parts: Any, caller: str = ANNA.user_id) -> IdempotencyKey:
    """As the API builds it: the caller, the header's key, and what the request asked."""
    return IdempotencyKey.of(caller, name, *parts)


def plan_key(name: str, plan: PlanRequest, caller: str = ANNA.user_id) -> IdempotencyKey:
    return key(name, "plan", asdict(plan), caller=caller)


def planned_count(app: ActivityApplication) -> int:
    return sum(
        n.topic.endswith("Activity.Planned")
        for n in app.recorder.select_notifications(start=1, limit=10_000)
    )


def test_the_same_key_and_request_replay_the_first_outcome(
    app: ActivityApplication, clock: ManualClock
) -> None:
    plan = request(clock)
    first = app.plan(ANNA, plan, idempotency=plan_key("k-1", plan))
    after_first = app.recorder.max_notification_id()
    clock.advance(minutes=5)

    again = app.plan(ANNA, plan, idempotency=plan_key("k-1", plan))

    assert (first.replayed, again.replayed) == (False, True)
    assert (again.status, again.activity.id, again.activity.version) == (
        201,
        first.activity.id,
        first.activity.version,
    )
    assert app.recorder.max_notification_id() == after_first
    assert planned_count(app) == 1


def test_a_replay_returns_the_first_version_even_after_later_changes(
    app: ActivityApplication, clock: ManualClock
) -> None:
    activity = app.plan(ANNA, request(clock)).activity
    target = activity.starts_at + DAY
    move_key = key("m-1", "move", str(activity.id), target.isoformat())

    def move() -> Outcome:
        return app.move(
            ANNA,
            activity.id,
            starts_at=target,
            ends_at=None,
            reason=MoveReason.NO_ANSWER,
            note=None,
            expected_version=1,
            idempotency=move_key,
        )

    first = move()
    app.retype(ANNA, activity.id, type_=ActivityType.STATUS_MEETING, channel=None, reason=None)
    before = app.recorder.max_notification_id()

    # a retried move: neither StaleVersion (expected 1) nor R1 (same time), but the first answer
    again = move()

    assert (first.replayed, first.activity.version) == (False, 2)
    assert (again.replayed, again.status, again.activity.version) == (True, 200, 2)
    assert (again.activity.type, again.activity.starts_at) == ("sales_meeting", target)
    assert app.recorder.max_notification_id() == before
    assert [type(e).__name__ for e in app.history(activity.id)] == ["Planned", "Moved", "Retyped"]


def test_the_same_key_for_another_request_is_refused(
    app: ActivityApplication, clock: ManualClock
) -> None:
    plan = request(clock)
    app.plan(ANNA, plan, idempotency=plan_key("k-2", plan))
    other = replace(plan, subject="Noget andet")
    before = app.recorder.max_notification_id()

    with pytest.raises(IdempotencyKeyReused) as refused:
        app.plan(ANNA, other, idempotency=plan_key("k-2", other))

    assert refused.value.key == "k-2"
    assert app.recorder.max_notification_id() == before
    assert planned_count(app) == 1


def test_keys_are_per_caller(app: ActivityApplication, clock: ManualClock) -> None:
    plan = request(clock)
    mine = app.plan(ANNA, plan, idempotency=plan_key("shared", plan))
    managers = app.plan(MIA, plan, idempotency=plan_key("shared", plan, caller=MIA.user_id))
    assert not managers.replayed
    assert managers.activity.id != mine.activity.id
    assert planned_count(app) == 2


def test_a_refused_command_does_not_use_up_its_key(
    app: ActivityApplication, clock: ManualClock
) -> None:
    bad = request(clock, in_=-HOUR)
    before = app.recorder.max_notification_id()
    with pytest.raises(DomainError):
        app.plan(ANNA, bad, idempotency=plan_key("k-3", bad))
    with pytest.raises(DomainError):  # the retry is refused again, not replayed
        app.plan(ANNA, bad, idempotency=plan_key("k-3", bad))
    assert app.recorder.max_notification_id() == before

    fixed = request(clock)
    outcome = app.plan(ANNA, fixed, idempotency=plan_key("k-3", fixed))
    assert not outcome.replayed
    assert planned_count(app) == 1


def test_concurrent_plans_under_one_key_make_exactly_one_activity(
    app: ActivityApplication, clock: ManualClock
) -> None:
    plan = request(clock)
    start = threading.Barrier(THREADS)

    def send(_: int) -> Outcome:
        start.wait(timeout=30)
        return app.plan(ANNA, plan, idempotency=plan_key("k-race", plan))

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = list(pool.map(send, range(THREADS)))

    assert len({o.activity.id for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1
    assert {(o.status, o.activity.version) for o in outcomes} == {(201, 1)}
    assert planned_count(app) == 1
    assert [type(e).__name__ for e in app.history(outcomes[0].activity.id)] == ["Planned"]
