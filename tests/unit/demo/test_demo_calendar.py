"""Step 10 when calendar-sync writes to Microsoft Graph: no feed, its sync records instead."""

from __future__ import annotations

import httpx
from crm_demo.calendar_feed import feed
from crm_demo.client import Api
from crm_demo.config import Config
from crm_demo.run import Run

PLANNED = {
    "id": "7b0c5a1e-0000-4000-8000-000000000001",
    "customer_id": "demo-x-A",
    "type": "status_meeting",
    "type_label": "Statusmøde",
    "subject": "Status",
    "status": "planned",
    "starts_at": "2026-12-01T13:00:00Z",
    "version": 2,
}


def graph_mode(synced_version: int) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(".ics"):
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(
            200,
            json={
                "activity_id": PLANNED["id"],
                "status": "synced",
                "mailbox": "anna@example.dk",
                "outlook_event_id": "AAMk-1",
                "activity_version": synced_version,
            },
        )

    return httpx.MockTransport(answer)


def run_with(transport: httpx.MockTransport) -> Run:
    run = Run(Api(Config(), transport), wait_s=0.3)
    run.activities["status_A"] = dict(PLANNED)
    return run


def test_without_a_feed_the_step_checks_calendar_syncs_records() -> None:
    result = feed(run_with(graph_mode(synced_version=2)))
    assert result.ok
    assert "Microsoft Graph" in result.happened
    assert any("AAMk-1" in line for line in result.detail)


def test_an_entry_synced_at_an_older_version_is_not_enough() -> None:
    result = feed(run_with(graph_mode(synced_version=1)))
    assert not result.ok
    assert "not every planned activity was synced" in result.happened
