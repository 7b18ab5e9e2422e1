"""Optimistic concurrency through the activity Application (If-Match), on both stores."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from activity.application import ActivityApplication, LostRace, StaleVersion
from activity.domain import (
    CANCELLED,
    COMPLETED,
    PLANNED,
    Activity,
    CompletionRequest,
    CustomerFile,
    PlanRequest,
)
from crm_contracts.enums import ActivityType, Channel, MoveReason, Segment
from crm_platform.errors import DomainError

from tests.support.clock import ManualClock
from tests.support.people import ANNA, MIA

CUSTOMER = "c-300"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
THREADS = 20
MAX_ATTEMPTS = 200  # per thread; a thread that never wins fails the test


@pytest.fixture(autouse=True)
def customer(add_customer: Callable[..., Any]) -> str:
    add_customer(CUSTOMER, "Boghandel Larsen", Segment.A)
    return CUSTOMER


def plan(app: ActivityApplication, clock: ManualClock, in_: timedelta = DAY) -> Activity:
    starts = clock.now + in_
    return app.plan(
        ANNA,
        PlanRequest(
            customer_id=CUSTOMER,
            owner=ANNA.user_id,
            type=ActivityType.CONTACT,
            channel=Channel.PHONE,
            subject="Julekampagne",
            starts_at=starts,
            ends_at=starts + HOUR,
        ),
    ).activity


def move(
    app: ActivityApplication, activity: Activity, starts_at: datetime, expected: int | None
) -> Activity:
    return app.move(
        ANNA,
        activity.id,
        starts_at=starts_at,
        ends_at=None,
        reason=MoveReason.NO_ANSWER,
        note=None,
        expected_version=expected,
    ).activity


def test_a_stale_expected_version_is_refused_and_stores_nothing(
    app: ActivityApplication, clock: ManualClock
) -> None:
    activity = plan(app, clock)
    moved = move(app, activity, activity.starts_at + DAY, expected=1)
    assert moved.version == 2

    before = app.recorder.max_notification_id()
    for stale in (1, 3):
        with pytest.raises(StaleVersion) as refused:
            move(app, activity, activity.starts_at + 2 * DAY, expected=stale)
        assert refused.value.details == {"current_version": 2}
        assert refused.value.status == 412
    with pytest.raises(StaleVersion):
        app.complete(
            ANNA, activity.id, CompletionRequest(note="n", next_step="s"), expected_version=1
        )
    assert app.recorder.max_notification_id() == before
    assert app.activity(activity.id).version == 2


@dataclass
class Mover:
    """One of the racing threads: what it tried and what it got."""

    index: int
    wins: list[tuple[int, datetime]] = field(default_factory=list)
    losses: Counter[str] = field(default_factory=Counter)
    unexpected: list[BaseException] = field(default_factory=list)


def test_twenty_threads_moving_one_activity_lose_no_move_and_leave_no_gap(
    app: ActivityApplication, clock: ManualClock
) -> None:
    activity = plan(app, clock)
    start = threading.Barrier(THREADS)

    def race(mover: Mover) -> Mover:
        start.wait(timeout=30)
        for attempt in range(MAX_ATTEMPTS):
            # a time no other attempt uses, so a move is never refused as "not a new time"
            target = activity.starts_at + timedelta(days=mover.index + 1, minutes=attempt + 1)
            try:
                version = app.activity(activity.id).version
                moved = move(app, activity, target, expected=version)
            except (StaleVersion, LostRace) as lost:
                mover.losses[type(lost).__name__] += 1
                continue
            except BaseException as error:  # report it in the main thread
                mover.unexpected.append(error)
                return mover
            mover.wins.append((moved.version, target))
            return mover
        return mover

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        movers = list(pool.map(race, [Mover(i) for i in range(THREADS)]))

    assert [m.unexpected for m in movers if m.unexpected] == []
    assert all(len(m.wins) == 1 for m in movers), [m.index for m in movers if not m.wins]
    wins = sorted(win for m in movers for win in m.wins)
    # one winner per version: versions 2..21, each won exactly once
    assert [version for version, _ in wins] == list(range(2, THREADS + 2))
    history = app.history(activity.id)
    assert [e.originator_version for e in history] == list(range(1, THREADS + 2))
    assert [type(e).__name__ for e in history] == ["Planned"] + ["Moved"] * THREADS
    # every successful move is in the history exactly once, at the version it was told
    assert [(e.originator_version, e.starts_at) for e in history[1:]] == wins
    final = app.activity(activity.id)
    assert (final.version, final.starts_at, final.status) == (THREADS + 1, wins[-1][1], PLANNED)
    assert app.repository.get(CustomerFile.id_for(CUSTOMER)).open_activities == {
        activity.id: wins[-1][1]
    }
    assert sum(sum(m.losses.values()) for m in movers) > 0, "the threads never raced"


CLOSE: dict[str, Callable[[ActivityApplication, Activity], object]] = {
    "cancel": lambda app, a: app.cancel(MIA, a.id, reason="Oprydning"),
    "complete": lambda app, a: app.complete(
        MIA, a.id, CompletionRequest(note="Kunden vil have tilbud i maj", next_step="Send det")
    ),
}


@pytest.mark.parametrize(
    "commands", [("cancel", "cancel"), ("complete", "cancel"), ("complete", "complete")]
)
def test_R8_two_racing_commands_cannot_leave_a_prioritized_customer_without_a_future(
    app: ActivityApplication,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    commands: tuple[str, str],
) -> None:
    first, second = plan(app, clock), plan(app, clock, in_=2 * DAY)
    # Both commands read the customer's file before either saves: each sees the other's
    # activity as the remaining future one, so only the shared file can stop them. The one
    # whose save loses the race runs again (it reads afresh) and is then refused by R8.
    both_read = threading.Barrier(2)
    read_file = app._for_change_in_file
    reads: list[str] = []

    def file_read_in_step(*args: Any) -> tuple[Activity, CustomerFile]:
        loaded = read_file(*args)
        reads.append(threading.current_thread().name)
        if len(reads) <= 2:
            both_read.wait(timeout=30)
        return loaded

    monkeypatch.setattr(app, "_for_change_in_file", file_read_in_step)

    def close(command: str, activity: Activity) -> str:
        try:
            CLOSE[command](app, activity)
        except DomainError as refused:
            return refused.code
        return command

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(close, commands, [first, second]))

    assert results.count("R8") == 1, results
    assert len(reads) == 3, "the loser did not run again"
    [(winner, won)] = [(c, a) for c, a in zip(results, (first, second), strict=True) if c != "R8"]
    [lost] = [a for a in (first, second) if a is not won]
    assert app.activity(won.id).status == (CANCELLED if winner == "cancel" else COMPLETED)
    assert app.activity(lost.id).status == PLANNED
    file = app.repository.get(CustomerFile.id_for(CUSTOMER))
    assert len(file.future_activities(clock.now)) == 1


def test_a_process_that_never_saw_an_activity_changes_it_as_one_that_did(
    app: ActivityApplication, clock: ManualClock
) -> None:
    # A command loads the activity with its customer's file in one read when this process
    # knows the activity's customer, else one after the other: both must see the same file.
    first = plan(app, clock)
    app._customers.clear()  # as another API process would start
    moved = move(app, first, first.starts_at + DAY, expected=1)
    assert app._customers == {first.id: CUSTOMER}
    moved = move(app, moved, moved.starts_at + DAY, expected=2)

    file = app.repository.get(CustomerFile.id_for(CUSTOMER))
    assert file.future_activities(clock.now) == [first.id]
    with pytest.raises(StaleVersion):
        move(app, moved, moved.starts_at + DAY, expected=2)
