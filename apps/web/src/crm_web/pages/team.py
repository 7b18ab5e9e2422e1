"""Team (sales managers): attainment per consultant and segment as charts, who is behind,
R8 gaps per consultant, move statistics, the CSV export, and a consultant's coaching page."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from crm_web.backend import ApiProblem
from crm_web.danish import now_local
from crm_web.pages.common import signed_in
from crm_web.pages.week import week_context
from crm_web.render import page

router = APIRouter()


def _year(aar: str) -> int:
    return int(aar) if aar.isdigit() and 2000 <= int(aar) <= 2100 else now_local().year


@router.get("/team")
async def team(request: Request, aar: str = "") -> Response:
    caller, api = signed_in(request)
    year = _year(aar)
    answers = await asyncio.gather(
        api.get("segmentation", "/reports/attainment", year=year),
        api.get("activity", "/reports/without-future-activity"),
        api.get(
            "activity",
            "/reports/moves",
            **{"from": date(year, 1, 1).isoformat(), "to": date(year, 12, 31).isoformat()},
        ),
        api.get("segmentation", "/reports/behind-target", year=year, limit=25),
        return_exceptions=True,
    )
    report, gaps, moves, behind = (_section(a) for a in answers)
    gap_items = gaps if isinstance(gaps, list) else (gaps or {}).get("items", [])
    return page(
        request,
        "team.html",
        caller=caller,
        nav="team",
        year=year,
        report=report,
        consultants=by_consultant(report["rows"]) if report else [],
        gaps_by_owner=Counter(g.get("owner") or "–" for g in gap_items),
        gaps=gap_items if gaps is not None else None,
        moves=moves,
        behind=behind,
    )


def _section(answer: Any) -> Any:
    """One report of the team page, or None when its API failed or was too slow: the page
    shows the others and says which is missing (a report over every customer can take
    long). Being refused is no such case: it is the page's answer."""
    if isinstance(answer, ApiProblem) and answer.status not in (401, 403, 404):
        return None
    if isinstance(answer, BaseException):
        raise answer
    return answer


@router.get("/team/eksport.csv")
async def export(request: Request, aar: str = "") -> Response:
    _, api = signed_in(request)
    year = _year(aar)
    answer = await api.request(
        "segmentation",
        "GET",
        "/reports/attainment",
        params={"year": year},
        headers={"Accept": "text/csv"},
    )
    return Response(
        answer.content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="maalopfyldelse-{year}.csv"'},
    )


@router.get("/team/{owner}")
async def coaching(request: Request, owner: str, aar: str = "") -> Response:
    caller, api = signed_in(request)
    owner = owner.strip().lower()
    year = _year(aar)
    report, moves, week = await asyncio.gather(
        api.get("segmentation", "/reports/attainment", year=year, owner=owner),
        api.get(
            "activity",
            "/reports/moves",
            **{"from": date(year, 1, 1).isoformat(), "to": date(year, 12, 31).isoformat()},
        ),
        week_context(api, owner, now_local().date()),
    )
    mine = [o for o in moves.get("owners", []) if o["owner"] == owner]
    return page(
        request,
        "coaching.html",
        caller=caller,
        nav="team",
        owner=owner,
        year=year,
        report=report,
        consultants=by_consultant(report["rows"]),
        moves=mine[0] if mine else None,
        **week,
    )


def by_consultant(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's rows (consultant × segment) summed per consultant, with chart widths."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row.get("owner") or "–"].append(row)
    result = []
    for owner, own in grouped.items():
        actual = sum(int(r["actual"]) for r in own)
        expected = sum((Decimal(r["expected_by_today"]) for r in own), Decimal(0))
        low = sum((Decimal(r["recommended_min"]) for r in own), Decimal(0))
        customers = sum(int(r["customers"]) for r in own)
        on_target = sum(int(r["on_target"]) for r in own)
        scale = float(max(Decimal(actual), expected, low, Decimal(1)))
        result.append(
            {
                "owner": owner,
                "rows": own,
                "actual": actual,
                "expected": expected,
                "min": low,
                "customers": customers,
                "on_target": on_target,
                "share": (Decimal(on_target) / customers) if customers else Decimal(0),
                "actual_pct": round(100 * actual / scale, 1),
                "expected_pct": round(100 * float(expected) / scale, 1),
                "min_pct": round(100 * float(low) / scale, 1),
            }
        )
    return result
