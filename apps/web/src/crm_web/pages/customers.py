"""Kunde: search by name or CVR; a customer's segment and how it was reached, agreement and
programme, targets against actual and expected-by-today, the timeline, the planned activities,
and the discovery profile's versions side by side."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from crm_web.backend import Api
from crm_web.pages.common import is_htmx, signed_in
from crm_web.render import page

router = APIRouter()

PROFILE_VERSIONS: Final = 3  # the current profile and the ones before it, side by side


@router.get("/kunder")
async def search(request: Request, q: str = "", mine: str = "") -> Response:
    caller, api = signed_in(request)
    query = q.strip()
    found: list[dict[str, Any]] = []
    if query or mine:
        listed = await api.get(
            "segmentation",
            "/customers",
            q=query or None,
            owner=caller.user_id if mine else None,
            limit=50,
        )
        found = listed["items"]
    name = "_customer_results.html" if is_htmx(request) else "customers.html"
    return page(request, name, caller=caller, nav="kunder", q=query, mine=mine, found=found)


@router.get("/kunder/{customer_id}")
async def customer_page(request: Request, customer_id: str) -> Response:
    caller, api = signed_in(request)
    customer, history, timeline, planned, profiles, attainment = await asyncio.gather(
        api.get("segmentation", f"/customers/{customer_id}"),
        api.get("segmentation", f"/customers/{customer_id}/history"),
        api.get("activity", f"/customers/{customer_id}/timeline", limit=50),
        api.get("activity", "/activities", customer_id=customer_id, status="planned", limit=100),
        profile_versions(api, customer_id),
        api.get("segmentation", f"/customers/{customer_id}/attainment"),
    )
    return page(
        request,
        "customer.html",
        caller=caller,
        nav="kunder",
        customer=customer,
        history=history,
        reached=[h for h in history if h.get("event") in SEGMENT_EVENTS],
        timeline=timeline["items"],
        planned=planned["items"],
        profiles=profiles,
        attainment=attainment,
        bars=[bar(line) for line in attainment["lines"] if line["counted"]],
    )


# What a customer's segment came from (segmentation's history event names).
SEGMENT_EVENTS: Final = {
    "registered",
    "potential_assessed",
    "agreement_started",
    "agreement_ended",
    "value_programme_set",
    "value_programme_ended",
    "segment_held_since",
    "segment_changed",
    "prioritized_changed",
}


async def profile_versions(api: Api, customer_id: str) -> list[dict[str, Any]]:
    """The discovery profile now and the versions before it (newest first).

    The API answers a profile as of a time; each earlier version is the one in force just
    before the later one was recorded.
    """
    found: list[dict[str, Any]] = []
    current = await api.optional("activity", f"/customers/{customer_id}/discovery-profile")
    while current is not None and len(found) < PROFILE_VERSIONS:
        found.append(current)
        recorded = datetime.fromisoformat(current["recorded_at"].replace("Z", "+00:00"))
        before = (recorded - timedelta(microseconds=1)).isoformat()
        current = await api.optional(
            "activity", f"/customers/{customer_id}/discovery-profile", as_of=before
        )
    return found


def bar(line: dict[str, Any]) -> dict[str, Any]:
    """One meeting type as a bar: actual, expected by today and the year's band, in percent
    of the widest of them so every bar of the chart has the same scale."""
    actual = float(line["actual"])
    expected = float(line["expected_by_today"] or 0)
    low = float(line["min"] or 0)
    high = float(line["max"] or 0)
    scale = max(actual, expected, high, 1.0)
    return {
        **line,
        "actual_pct": round(100 * actual / scale, 1),
        "expected_pct": round(100 * expected / scale, 1),
        "min_pct": round(100 * low / scale, 1),
        "max_pct": round(100 * high / scale, 1),
        "behind": actual < expected,
    }
