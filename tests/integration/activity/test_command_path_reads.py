"""The cheaper command path reads no less than before: the directory is read fresh on every
command (a change committed elsewhere counts at once), an Idempotency-Key is looked up only
when the command cannot commit, with the same answers as a look-up beforehand, and cached
aggregates catch up with other processes and are never changed by a refused command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from activity.application import ActivityApplication, LostRace, Outcome, StaleVersion
from activity.consumers import CustomerDirectory
from activity.domain import PLANNED, CompletionRequest, CustomerFile, PlanRequest
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import ActivityType, Channel, MoveReason, Segment
from crm_platform.errors import DomainError
from crm_platform.idempotency import IdempotencyKey, IdempotencyKeyReused
from eventsourcing.persistence import IntegrityError

from tests.support.clock import ManualClock
from tests.support.people import ANNA

CUSTOMER = "c-700"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def snapshot(version: int, segment: Segment, customer_id: str = CUSTOMER) -> CustomerSnapshot:
    return CustomerSnapshot(
        customer_id=customer_id,
        name="Tømrer Olsen",
        segment=segment,
        prioritized=segment in (Segment.ANNUAL_AGREEMENT, Segment.A, Segment.B),
        version=version,
        updated_at=datetime(2026, 1, version, tzinfo=UTC),
        actor="segmentation",
    )


@pytest.fixture
def consumer_side(env: dict[str, str]) -> Iterator[CustomerDirectory]:
    """The directory as the consumer process has it: its own instance and connections."""
    view = CustomerDirectory(env)
    yield view
    view.close()


def plan_request(clock: ManualClock, customer_id: str = CUSTOMER) -> PlanRequest:
    starts = clock.now + DAY
    return PlanRequest(
        customer_id=customer_id,
        owner=ANNA.user_id,
        type=ActivityType.SALES_MEETING,
        channel=Channel.VIDEO,
        subject="Tilbud",
        starts_at=starts,
        ends_at=starts + HOUR,
    )


def plan_key(name: str, plan: PlanRequest) -> IdempotencyKey:
    return IdempotencyKey.of(ANNA.user_id, name, "plan", asdict(plan))


def complete_key(name: str, activity: Outcome) -> IdempotencyKey:
    return IdempotencyKey.of(ANNA.user_id, name, "complete", str(activity.activity.id))


def complete(app: ActivityApplication, planned: Outcome, key: IdempotencyKey | None) -> Outcome:
    return app.complete(
        ANNA,
        planned.activity.id,
        CompletionRequest(note="Godt møde", next_step="Send tilbud"),
        idempotency=key,
    )


# -- the directory --------------------------------------------------------------------------


def test_a_single_row_read_sees_what_another_connection_just_committed(
    directory: CustomerDirectory, consumer_side: CustomerDirectory
) -> None:
    assert directory.get(CUSTOMER) is None
    consumer_side.apply_snapshot(snapshot(1, Segment.C))
    first = directory.get(CUSTOMER)
    consumer_side.apply_snapshot(snapshot(2, Segment.A))
    second = directory.get(CUSTOMER)

    assert first is not None
    assert (first.segment, first.prioritized) == ("C", False)
    assert second is not None
    assert (second.segment, second.prioritized) == ("A", True)
    row = directory.read_one("SELECT version FROM {t}customers WHERE customer_id = ?", (CUSTOMER,))
    assert row == {"version": 2}
    assert (
        directory.read_one("SELECT 1 AS x FROM {t}customers WHERE customer_id = ?", ("-",)) is None
    )


def test_the_commands_use_the_directory_as_the_consumer_last_left_it(
    app: ActivityApplication, consumer_side: CustomerDirectory, clock: ManualClock
) -> None:
    with pytest.raises(DomainError) as unknown:
        app.plan(ANNA, plan_request(clock))
    assert unknown.value.code == "unknown_customer"

    consumer_side.apply_snapshot(snapshot(1, Segment.C))
    planned = app.plan(ANNA, plan_request(clock))
    consumer_side.apply_snapshot(snapshot(2, Segment.A))  # now prioritized: R8 applies

    with pytest.raises(DomainError) as refused:
        complete(app, planned, None)
    assert refused.value.code == "R8"

    consumer_side.apply_snapshot(snapshot(3, Segment.C))
    assert complete(app, planned, None).activity.version == 2


# -- the Idempotency-Key, looked up only when the command cannot commit ------------------------


@pytest.fixture
def known(consumer_side: CustomerDirectory) -> None:
    consumer_side.apply_snapshot(snapshot(1, Segment.C))


@pytest.fixture
def replays(app: ActivityApplication, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each look-up of a key's record."""
    seen: list[Any] = []
    look_up: Callable[[IdempotencyKey | None], Outcome | None] = app._replay

    def counting(key: IdempotencyKey | None) -> Outcome | None:
        seen.append(key)
        return look_up(key)

    monkeypatch.setattr(app, "_replay", counting)
    return seen


@pytest.mark.usefixtures("known")
def test_a_first_keyed_command_does_not_look_its_key_up(
    app: ActivityApplication, clock: ManualClock, replays: list[Any]
) -> None:
    plan = plan_request(clock)
    planned = app.plan(ANNA, plan, idempotency=plan_key("p-1", plan))
    completed = complete(app, planned, complete_key("c-1", planned))

    assert (planned.replayed, completed.replayed) == (False, False)
    assert replays == []


@pytest.mark.usefixtures("known")
def test_a_repeat_refused_by_the_rules_answers_with_the_first_outcome(
    app: ActivityApplication, clock: ManualClock, replays: list[Any]
) -> None:
    planned = app.plan(ANNA, plan_request(clock))
    key = complete_key("c-2", planned)
    first = complete(app, planned, key)
    before = app.recorder.max_notification_id()

    # completing a completed activity is refused; under the same key it is the first answer
    again = complete(app, planned, key)

    assert (again.replayed, again.status, again.activity.version) == (True, 200, 2)
    assert again.activity.id == first.activity.id
    assert app.recorder.max_notification_id() == before
    assert replays == [key]
    with pytest.raises(DomainError):  # without the key it is refused as before
        complete(app, planned, None)


@pytest.mark.usefixtures("known")
def test_a_reused_key_is_reported_before_what_the_rules_say(
    app: ActivityApplication, clock: ManualClock
) -> None:
    planned = app.plan(ANNA, plan_request(clock))
    complete(app, planned, complete_key("c-3", planned))
    other = IdempotencyKey.of(ANNA.user_id, "c-3", "something else")

    with pytest.raises(IdempotencyKeyReused):  # not "already completed"
        complete(app, planned, other)


@pytest.mark.usefixtures("known")
def test_a_refused_keyed_command_leaves_nothing_behind(
    app: ActivityApplication, clock: ManualClock
) -> None:
    plan = plan_request(clock)
    app.plan(ANNA, plan, idempotency=plan_key("p-4", plan))
    before = app.recorder.max_notification_id()
    other = replace(plan, subject="Andet")

    with pytest.raises(IdempotencyKeyReused):
        app.plan(ANNA, other, idempotency=plan_key("p-4", other))
    assert app.recorder.max_notification_id() == before


@pytest.mark.usefixtures("known")
def test_a_lost_race_under_a_new_key_is_still_a_lost_race(
    app: ActivityApplication, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = app.plan(ANNA, plan_request(clock))

    def conflicting_save(*_: Any, **__: Any) -> Any:
        raise IntegrityError("someone else saved first")

    monkeypatch.setattr(app, "save", conflicting_save)
    with pytest.raises(LostRace):
        complete(app, planned, complete_key("c-5", planned))


# -- the aggregate cache ----------------------------------------------------------------------


@pytest.fixture
def other_process(
    env: dict[str, str], consumer_side: CustomerDirectory, clock: ManualClock
) -> Iterator[ActivityApplication]:
    """Another API process: its own application, cache and connections on the same store."""
    application = ActivityApplication(env, directory=consumer_side, clock=clock)
    yield application
    application.close()


def move(app: ActivityApplication, planned: Outcome, by: timedelta, version: int) -> Outcome:
    return app.move(
        ANNA,
        planned.activity.id,
        starts_at=planned.activity.starts_at + by,
        ends_at=None,
        reason=MoveReason.NO_ANSWER,
        note=None,
        expected_version=version,
    )


def test_a_cache_without_fast_forward_is_refused(
    env: dict[str, str], directory: CustomerDirectory
) -> None:
    with pytest.raises(ValueError, match="FASTFORWARD"):
        ActivityApplication(
            {**env, "AGGREGATE_CACHE_MAXSIZE": "100", "AGGREGATE_CACHE_FASTFORWARD": "n"},
            directory=directory,
        )


def test_R8_sees_a_future_activity_planned_by_another_process(
    cached: ActivityApplication,
    other_process: ActivityApplication,
    consumer_side: CustomerDirectory,
    clock: ManualClock,
) -> None:
    consumer_side.apply_snapshot(snapshot(1, Segment.A))
    first = cached.plan(ANNA, plan_request(clock))
    with pytest.raises(DomainError, match="R8"):  # caches the file here, with one activity
        complete(cached, first, None)

    other_process.plan(ANNA, plan_request(clock))

    assert complete(cached, first, None).activity.version == 2
    file = other_process.repository.get(CustomerFile.id_for(CUSTOMER))
    assert len(file.future_activities(clock.now)) == 1


@pytest.fixture
def cached(
    env: dict[str, str], consumer_side: CustomerDirectory, clock: ManualClock
) -> Iterator[ActivityApplication]:
    """The application with eventsourcing's aggregate cache turned on (off by default)."""
    application = ActivityApplication(
        {**env, "AGGREGATE_CACHE_MAXSIZE": "100"}, directory=consumer_side, clock=clock
    )
    yield application
    application.close()


def test_the_aggregate_cache_is_off_by_default(app: ActivityApplication) -> None:
    assert app.repository.cache is None


@pytest.mark.usefixtures("known")
def test_a_cached_activity_catches_up_with_another_process_s_save(
    cached: ActivityApplication, other_process: ActivityApplication, clock: ManualClock
) -> None:
    planned = cached.plan(ANNA, plan_request(clock))
    assert cached.activity(planned.activity.id).version == 1  # now cached

    move(other_process, planned, DAY, version=1)

    with pytest.raises(StaleVersion):
        move(cached, planned, 2 * DAY, version=1)
    assert move(cached, planned, 2 * DAY, version=2).activity.version == 3


def test_a_refused_command_leaves_the_cached_aggregates_as_stored(
    cached: ActivityApplication, consumer_side: CustomerDirectory, clock: ManualClock
) -> None:
    app = cached
    consumer_side.apply_snapshot(snapshot(1, Segment.A))
    planned = app.plan(ANNA, plan_request(clock))
    app.activity(planned.activity.id)
    file_id = CustomerFile.id_for(CUSTOMER)
    app.repository.get(file_id)

    # R8 refuses only after the activity (and its copy of the file) were changed in memory
    with pytest.raises(DomainError, match="R8"):
        complete(app, planned, None)

    assert app.repository.cache is not None
    cached_activity = app.repository.cache.get(planned.activity.id)
    cached_file = app.repository.cache.get(file_id)
    assert (cached_activity.version, cached_activity.status) == (1, PLANNED)
    assert list(cached_file.open_activities) == [planned.activity.id]
    stored = app.activity(planned.activity.id)
    assert (stored.status, stored.version) == (PLANNED, 1)
    assert [type(e).__name__ for e in app.history(planned.activity.id)] == ["Planned"]
