"""Going live mid-year, on SQLite and PostgreSQL: the customer import's `segment_since` says
since when the customer has held the segment the row leaves it in, so this year's targets are
pro-rated from that day, not from the import.

The clock stands at 2026-12-07 09:00 UTC: the import happens in December."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from crm_contracts.enums import Segment
from crm_platform.auth import Authenticator, AuthMode, AuthSettings
from fastapi.testclient import TestClient
from segmentation.api import SegmentationApi, create_app
from segmentation.application import SegmentationApplication
from segmentation.attainment import ActivityEventsConsumer
from segmentation.attainment_api import attainment_router

from tests.integration.segmentation.test_api import ANNA_H, MIA_H, events
from tests.integration.segmentation.test_attainment_support import view
from tests.integration.segmentation.test_import import post
from tests.support.clock import ManualClock
from tests.support.people import MIA

__all__ = ["view"]  # fixture

DECEMBER = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
HEADER = (
    "customer_id,name,cvr,owner,potential_dkk,annual_agreement_from,annual_agreement_to,"
    "segment_since\n"
)


@pytest.fixture
def client(
    app: SegmentationApplication, view: ActivityEventsConsumer, clock: ManualClock
) -> Iterator[TestClient]:
    clock.now = DECEMBER
    auth = Authenticator(AuthSettings(mode=AuthMode.DEV), production_settings_present=False)
    web = create_app(
        SegmentationApi(
            app=app, auth=auth, extra_routers=[attainment_router(view, app, auth, clock)]
        )
    )
    with TestClient(web, raise_server_exceptions=False) as test_client:
        yield test_client


def lines(client: TestClient, customer_id: str) -> dict[str, tuple[str, str, str]]:
    body = client.get(f"/customers/{customer_id}/attainment", headers=ANNA_H).json()
    return {
        line["type"]: (line["min"], line["max"], line["status"])
        for line in body["lines"]
        if line["counted"]
    } | {"on_target": body["on_target"]}  # type: ignore[dict-item]


def test_a_customer_held_its_segment_since_january_has_full_year_targets(
    client: TestClient, app: SegmentationApplication
) -> None:
    rows = (
        "k-1,Bager Hansen ApS,,anna@example.dk,500000,,,2026-01-01\n"
        "k-2,Kiosken,,anna@example.dk,500000,,,\n"  # no segment_since: from the import
    )
    result = post(client, HEADER + rows)
    assert result.json()["imported"] == 2, result.json()

    held = client.get("/customers/k-1", headers=ANNA_H).json()
    assert (held["segment"], held["segment_since"]) == ("A", "2026-01-01")
    assert lines(client, "k-1") == {
        "discovery_meeting": ("1.0", "1.0", "under"),
        "proposal_meeting": ("1.0", "3.0", "under"),
        "status_meeting": ("4.0", "6.0", "under"),
        "sales_meeting": ("0.0", "0.0", "on_target"),
        "on_target": False,
    }
    assert app.segment_history("k-1") == [(date(2026, 1, 1), Segment.A)]

    # Without it the year is pro-rated from the import: 25 days of A "are on target".
    fresh = client.get("/customers/k-2", headers=ANNA_H).json()
    assert fresh["segment_since"] == "2026-12-07"
    assert lines(client, "k-2")["on_target"] is True
    assert lines(client, "k-2")["status_meeting"] == ("0.3", "0.4", "on_target")

    report = client.get("/reports/attainment", headers=MIA_H).json()
    assert [(r["segment"], r["customers"], r["on_target"]) for r in report["rows"]] == [("A", 2, 1)]
    # The full year (1 + 1 + 4) and 25 days of it (0.1 + 0.1 + 0.3).
    assert report["rows"][0]["recommended_min"] == "6.5"


def test_segment_since_in_a_second_import_and_what_it_refuses(
    client: TestClient, app: SegmentationApplication
) -> None:
    rows = "k-1,Bager,,,500000,,,2026-01-01\n"
    assert post(client, HEADER + rows).json()["imported"] == 1
    before = events(app)
    assert post(client, HEADER + rows).json()["unchanged"] == 1  # the same file: nothing new
    assert events(app) == before

    earlier = post(client, HEADER + "k-1,Bager,,,500000,,,2025-07-01\n").json()
    assert earlier["updated"] == 1
    assert app.customer("k-1").customer.segment_since == date(2025, 7, 1)

    refused = post(
        client,
        HEADER
        + "k-1,Bager,,,500000,,,2026-02-01\n"  # line 2: later than the day on record
        + "k-2,Ny,,,500000,,,2026-12-08\n"  # line 3: tomorrow
        + "k-3,Ny,,,500000,,,2026-13-01\n",  # line 4: no such day
    ).json()
    assert [(r["line"], r["customer_id"]) for r in refused["rejected"]] == [
        (2, "k-1"),
        (3, "k-2"),
        (4, "k-3"),
    ]
    assert "segment_since" in refused["rejected"][0]["reasons"][0]
    assert app.customer("k-1").customer.segment_since == date(2025, 7, 1)


def test_the_history_says_since_when_and_who(
    client: TestClient, app: SegmentationApplication
) -> None:
    post(client, HEADER + "k-1,Bager,,,500000,,,2026-01-01\n")
    history = client.get("/customers/k-1/history", headers=ANNA_H).json()
    assert history[-1]["event"] == "segment_held_since"
    assert history[-1]["actor"] == MIA.user_id
    assert history[-1]["details"] == {"segment": "A", "since": "2026-01-01"}
