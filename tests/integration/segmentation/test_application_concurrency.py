"""Optimistic concurrency and Idempotency-Keys through the segmentation Application."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from crm_platform.errors import LostRace, StaleVersion
from crm_platform.idempotency import IdempotencyKey, IdempotencyKeyReused
from segmentation.application import SegmentationApplication
from segmentation.domain import Customer
from segmentation.policy import DEFAULT_POLICY
from segmentation.recompute import Recomputation

from tests.support.clock import ManualClock
from tests.support.people import ANNA, MIA

THREADS = 8


@pytest.fixture
def customer(app: SegmentationApplication) -> str:
    app.register_customer(MIA, name="Boghandel Larsen", customer_id="c-300", owner=ANNA.user_id)
    return "c-300"


def key(name: str, *parts: Any, caller: str = MIA.user_id) -> IdempotencyKey:
    return IdempotencyKey.of(caller, name, *parts)


def test_a_stale_expected_version_is_refused(app: SegmentationApplication, customer: str) -> None:
    app.assess_potential(MIA, customer, amount="50000", expected_version=1)
    with pytest.raises(StaleVersion) as stale:
        app.rename(MIA, customer, name="Nyt navn", expected_version=1)
    assert stale.value.details["current_version"] == 3
    assert app.rename(MIA, customer, name="Nyt navn", expected_version=3).customer.version == 4


def test_a_save_that_loses_the_race_is_refused_with_a_retry_hint(
    env: dict[str, str], app: SegmentationApplication, customer: str, clock: ManualClock
) -> None:
    other = SegmentationApplication(env, clock=clock)  # another process on the same store
    try:
        load = app._for_change

        def interleaved(customer_id: str, expected: int | None) -> Customer:
            loaded = load(customer_id, expected)
            other.assess_potential(MIA, customer_id, amount="400000")
            return loaded

        app._for_change = interleaved
        with pytest.raises(LostRace) as lost:
            app.assess_potential(MIA, customer, amount="50000")
        assert lost.value.details == {"retry": True}
    finally:
        other.close()
    assert app.customer(customer).customer.potential == 400000
    assert app.registry.registry_row(customer).segment == "A"


def test_concurrent_writers_each_win_once_after_retrying(
    app: SegmentationApplication, customer: str
) -> None:
    start = threading.Barrier(THREADS)

    def rename(n: int) -> int:
        start.wait()
        for attempt in range(200):
            try:
                app.rename(MIA, customer, name=f"Navn {n}")
                return attempt
            except LostRace:
                continue
        raise AssertionError("never won")

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(rename, range(THREADS)))
    view = app.customer(customer)
    assert view.version == 1 + THREADS
    assert app.registry.registry_row(customer).version == view.version


def test_a_repeated_key_replays_the_first_registration(app: SegmentationApplication) -> None:
    first = app.register_customer(MIA, name="Ny kunde", idempotency=key("k-1", "Ny kunde"))
    end = app.recorder.max_notification_id()
    again = app.register_customer(MIA, name="Ny kunde", idempotency=key("k-1", "Ny kunde"))
    assert (first.replayed, again.replayed, again.status) == (False, True, 201)
    assert again.customer.customer_id == first.customer.customer_id  # not a second generated id
    assert app.recorder.max_notification_id() == end
    with pytest.raises(IdempotencyKeyReused):
        app.register_customer(MIA, name="Anden kunde", idempotency=key("k-1", "Anden kunde"))


def test_a_key_replays_the_customer_as_that_command_left_it(
    app: SegmentationApplication, customer: str
) -> None:
    first = app.assess_potential(MIA, customer, amount="50000", idempotency=key("p", "50000"))
    app.rename(MIA, customer, name="Senere")
    again = app.assess_potential(MIA, customer, amount="50000", idempotency=key("p", "50000"))
    assert again.replayed
    assert (again.customer.version, again.customer.name) == (
        first.customer.version,
        "Boghandel Larsen",
    )


def test_racing_requests_with_one_key_register_one_customer(app: SegmentationApplication) -> None:
    start = threading.Barrier(THREADS)

    def register(_: int) -> str:
        start.wait()
        for _attempt in range(50):
            try:
                outcome = app.register_customer(MIA, name="Samme", idempotency=key("same", "Samme"))
                return outcome.customer.customer_id
            except LostRace:
                continue
        raise AssertionError("never answered")

    with ThreadPoolExecutor(THREADS) as pool:
        ids = set(pool.map(register, range(THREADS)))
    assert len(ids) == 1
    assert len(app.customers()) == 1


def test_a_repeated_key_replays_the_policy_change(app: SegmentationApplication) -> None:
    data = DEFAULT_POLICY.to_json()
    data["prioritized"] = ["A"]
    first = app.set_policy(MIA, data, idempotency=key("pol", data))
    again = app.set_policy(MIA, data, idempotency=key("pol", data))
    assert again.replayed
    assert (again.policy.version, again.recomputation.id) == (2, first.recomputation.id)
    assert isinstance(again.recomputation, Recomputation)
    assert app.policy().version == 2
