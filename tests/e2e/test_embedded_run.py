"""`make run`'s process, started from a clean data directory: it answers on every prefix,
the services talk through the in-process transport, Ctrl-C stops it cleanly, and the data
survives a restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.embedded_process import EmbeddedProcess
from tests.support.polling import wait_until

MIA = {"X-Dev-User": "mia@example.dk", "X-Dev-Roles": "sales_manager"}
ANNA = {"X-Dev-User": "anna@example.dk", "X-Dev-Roles": "consultant"}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / ".data"


@pytest.fixture
def embedded(data: Path) -> Iterator[EmbeddedProcess]:
    system = EmbeddedProcess(data, data.parent / "crm_embedded.log")
    try:
        wait_until(system.ready, timeout=60, interval=0.2, message="the embedded system")
        yield system
    finally:
        system.stop()


def test_the_embedded_system_answers_connects_and_keeps_its_data(
    embedded: EmbeddedProcess,
    data: Path,
) -> None:
    base = embedded.base
    for prefix in ("activity", "segmentation", "calendar-sync"):
        assert httpx.get(f"{base}/{prefix}/docs").status_code == 200
    customer = httpx.post(
        f"{base}/segmentation/customers",
        headers=MIA,
        json={
            "customer_id": "k1",
            "name": "Bager Hansen ApS",
            "owner": "anna@example.dk",
            "potential_dkk": "50000",
        },
    )
    assert customer.status_code == 201
    assert customer.json()["segment"] == "C"

    start = (datetime.now(UTC) + timedelta(days=2)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    plan = {
        "customer_id": "k1",
        "owner": "anna@example.dk",
        "type": "status_meeting",
        "channel": "phone",
        "subject": "Status",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
    }

    def planned() -> httpx.Response | None:
        response = httpx.post(f"{base}/activity/activities", headers=ANNA, json=plan)
        return response if response.status_code == 201 else None

    activity = wait_until(planned, timeout=30, message="the customer known to activity")
    feed_url = f"{base}/calendar-sync/calendars/anna@example.dk.ics"

    def in_feed() -> bool:
        feed = httpx.get(feed_url, headers=ANNA)
        return feed.status_code == 200 and "Statusmøde: Status – Bager Hansen ApS" in feed.text

    wait_until(in_feed, timeout=30, message="the activity in the consultant's feed")
    assert embedded.stop() == 0

    again = EmbeddedProcess(data, data.parent / "crm_embedded-restarted.log")
    try:
        wait_until(again.ready, timeout=60, interval=0.2, message="the restarted system")
        response = httpx.get(
            f"{again.base}/activity/activities/{activity.json()['id']}", headers=ANNA
        )
        assert (response.status_code, response.json()["subject"]) == (200, "Status")
        assert again.stop() == 0
    finally:
        again.stop()
