"""Min uge: the consultant's week day by day, what is overdue, R8 gaps, customers behind;
"Kunden tog ikke telefonen" (R1) from any planned activity; the calendar feed link."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from crm_web.backend import Api, ApiProblem
from crm_web.danish import COPENHAGEN, field_errors, form_time, monday_of, now_local
from crm_web.forms import read
from crm_web.pages.common import customer_names, go, is_htmx, seen, signed_in
from crm_web.render import page

router = APIRouter()


@router.get("/uge")
async def my_week(request: Request, dag: str = "", konsulent: str = "") -> Response:
    caller, api = signed_in(request)
    owner = konsulent.strip().lower() or caller.user_id
    try:
        chosen = date.fromisoformat(dag) if dag else now_local().date()
    except ValueError:
        chosen = now_local().date()
    context = await week_context(api, owner, chosen)
    return page(request, "week.html", caller=caller, nav="uge", owner=owner, **context)


async def week_context(api: Api, owner: str, chosen: date) -> dict[str, Any]:
    monday = monday_of(chosen)
    sunday = monday + timedelta(days=6)
    listed, overdue, gaps, behind = await asyncio.gather(
        api.get(
            "activity",
            "/activities",
            owner=owner,
            limit=500,
            **{"from": monday.isoformat(), "to": sunday.isoformat()},
        ),
        api.get("activity", "/reports/overdue", owner=owner, limit=100),
        api.get("activity", "/reports/without-future-activity", owner=owner),
        _behind(api, owner),
    )
    rows = [r for r in listed["items"] if r["status"] != "cancelled"]
    names = await customer_names(
        api, [r["customer_id"] for r in rows] + [r["customer_id"] for r in overdue["items"]]
    )
    days = []
    for offset in range(7):
        current = monday + timedelta(days=offset)
        days.append(
            {
                "date": current,
                "today": current == now_local().date(),
                "items": [r for r in rows if _local_day(r["starts_at"]) == current],
            }
        )
    return {
        "monday": monday,
        "sunday": sunday,
        "previous": (monday - timedelta(days=7)).isoformat(),
        "following": (monday + timedelta(days=7)).isoformat(),
        "days": days,
        "overdue": overdue["items"],
        "gaps": gaps if isinstance(gaps, list) else gaps.get("items", []),
        "behind": behind,
        "names": names,
    }


async def _behind(api: Api, owner: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await api.get(
            "segmentation", "/reports/behind-target", owner=owner, limit=20
        )
    except ApiProblem as problem:
        if problem.status == 403:
            return None  # another consultant's numbers: not for this caller
        raise
    return found


def _local_day(instant: str) -> date:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(COPENHAGEN).date()


def next_slot(starts_at: str, ends_at: str) -> tuple[str, str]:
    """The same time of day on the next working day after today (or after the activity)."""
    start = datetime.fromisoformat(starts_at.replace("Z", "+00:00")).astimezone(COPENHAGEN)
    end = datetime.fromisoformat(ends_at.replace("Z", "+00:00")).astimezone(COPENHAGEN)
    day = max(start.date(), now_local().date()) + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    proposed = datetime.combine(day, time(start.hour, start.minute), COPENHAGEN)
    return form_time(proposed), form_time(proposed + (end - start))


@router.get("/aktiviteter/{activity_id}/ingen-svar")
async def no_answer_form(request: Request, activity_id: str, tilbage: str = "/uge") -> Response:
    caller, api = signed_in(request)
    activity = await api.get("activity", f"/activities/{activity_id}")
    starts, ends = next_slot(activity["starts_at"], activity["ends_at"])
    values = {"starts_at": starts, "ends_at": ends, "version": str(activity["version"])}
    return _no_answer(request, caller, activity, values, {}, None, tilbage)


@router.post("/aktiviteter/{activity_id}/ingen-svar")
async def no_answer(request: Request, activity_id: str, tilbage: str = "/uge") -> Response:
    caller, api = signed_in(request)
    form = read(await request.form())
    starts_at, ends_at = form.time("starts_at"), form.time("ends_at")
    activity = await api.get("activity", f"/activities/{activity_id}")
    if not form.errors:
        body: dict[str, Any] = {"starts_at": starts_at, "reason": "no_answer"}
        if ends_at:
            body["ends_at"] = ends_at
        if form.text("note"):
            body["note"] = form.text("note")
        try:
            moved = await api.post(
                "activity",
                f"/activities/{activity_id}/move",
                body,
                version=int(form.get("version") or activity["version"]),
            )
        except ApiProblem as problem:
            errors, general = field_errors(problem.problem, problem.status)
            return _no_answer(request, caller, activity, form.values, errors, general, tilbage, 422)
        await seen(request, api, moved)
        return go(request, _back(tilbage))
    return _no_answer(request, caller, activity, form.values, form.errors, None, tilbage, 422)


def _no_answer(
    request: Request,
    caller: Any,
    activity: dict[str, Any],
    values: dict[str, str],
    errors: dict[str, str],
    general: str | None,
    back: str,
    status: int = 200,
) -> Response:
    name = "_no_answer.html" if is_htmx(request) else "no_answer.html"
    return page(
        request,
        name,
        status,
        caller=caller,
        nav="uge",
        activity=activity,
        values=values,
        errors=errors,
        general=general,
        back=_back(back),
    )


@router.post("/kalender/nyt-link")
async def rotate_feed(request: Request) -> Response:
    caller, api = signed_in(request)
    try:
        token = await api.post("calendar", f"/calendars/{caller.user_id}/token", None)
        error = None
    except ApiProblem as problem:
        token, error = None, field_errors(problem.problem, problem.status)[1]
    # Without JavaScript the form is posted plainly: answer a whole page, not the fragment.
    name = "_feed_link.html" if is_htmx(request) else "feed_link.html"
    return page(request, name, caller=caller, nav="uge", token=token, error=error)


def _back(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/uge"
