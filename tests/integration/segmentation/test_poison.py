"""Customers written before today's validation (or by hand) never stall the snapshot relay.

An id the contract now refuses (`kunde-ą`, `a/b`) is parked with its customer's later
events behind it; every other customer's snapshot goes out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import segmentation.domain
from crm_contracts.cloudevents import decode
from crm_platform.follower import WAITING
from crm_platform.messaging.inprocess import InProcessBroker, InProcessPublisher
from crm_platform.parking import ParkingLot
from segmentation.application import SegmentationApplication
from segmentation.relay import RELAYED_TOPICS, CustomerRelay, relay_tracking

from tests.support.people import MIA

TOPIC = "t.customers-poison"


@pytest.fixture
def parking(env: dict[str, str]) -> Iterator[ParkingLot]:
    lot = ParkingLot(env, "segmentation")
    yield lot
    lot.close()


def register_unchecked(
    app: SegmentationApplication, monkeypatch: pytest.MonkeyPatch, customer_id: str
) -> None:
    """As an older version would have: before ids had a documented character set."""
    with monkeypatch.context() as patched:
        patched.setattr(segmentation.domain, "require_id", lambda value, field: value)
        app.register_customer(MIA, name="Gammel kunde", customer_id=customer_id)


def test_the_relay_parks_customers_the_contract_refuses_and_publishes_the_rest(
    app: SegmentationApplication,
    env: dict[str, str],
    parking: ParkingLot,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    app.register_customer(MIA, name="Bager Hansen", customer_id="k1")
    register_unchecked(app, monkeypatch, "kunde-ą")
    register_unchecked(app, monkeypatch, "a/b")
    app.rename(MIA, "kunde-ą", name="Gammel kunde ApS")
    app.register_customer(MIA, name="Cykel Centret", customer_id="k2")
    broker = InProcessBroker(str(tmp_path / "log.sqlite"))
    tracking = relay_tracking(env)
    try:
        relay = CustomerRelay(
            app, InProcessPublisher(broker), tracking, topic=TOPIC, parking=parking
        )
        relay.catch_up()
        position = relay.position
    finally:
        tracking.close()

    assert {m.key for m in broker.messages(TOPIC)} == {"k1", "k2"}
    assert all(decode(m).message for m in broker.messages(TOPIC))
    assert not app.recorder.select_notifications(
        start=position, limit=1, topics=RELAYED_TOPICS, inclusive_of_start=False
    )
    errors = [e.error for e in sorted(parking.entries(), key=lambda e: int(e.position))]
    assert len(errors) == 3
    assert errors[2] == WAITING  # the rename waits behind its customer's registration
    assert all("customer_id" in error for error in errors[:2])
