"""Routes over meeting attainment: one customer's year, and the team report.

Both answer JSON, or CSV (a header row, Danish labels beside the codes) when the caller
sends `Accept: text/csv` - sales managers open these in Excel. The team report is by
consultant, so it is for managers (and services) and for that consultant only: a consultant
naming another owner gets 403, and without `owner=` sees their own rows.

No `from __future__ import annotations`: FastAPI resolves the `Annotated[..., Depends(x)]`
hints when the routes are defined, and `x` is local to the factory.
"""

import csv
import io
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final

from crm_contracts.enums import ActivityType, Segment
from crm_platform.auth import Authenticator, Principal
from crm_platform.auth.principal import normalize_user_id
from crm_platform.http import ApiError, StrictRoute, error_responses
from crm_platform.values import CustomerIdPath, OwnerQuery, UtcInstant
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from segmentation.application import SegmentationApplication
from segmentation.attainment import ActivityEventsConsumer, CustomerAttainment, ReportRow
from segmentation.rules import local_date
from segmentation.targets import REPORTED_BESIDE

CSV_TYPE: Final = "text/csv; charset=utf-8"
STATUS_LABELS: Final = {
    "under": "Under mål",
    "on_target": "På mål",
    "over": "Over mål",
    "no_target": "Intet mål",
    "beside": "Tælles ikke med",
}
Year = Annotated[int | None, Query(ge=2000, le=2100, description="Default: this year")]
CSV_RESPONSE: Final[dict[int | str, dict[str, Any]]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


class AttainmentLine(BaseModel):
    type: ActivityType
    type_label: str
    counted: bool  # False for contacts and unannounced visits: reported beside the targets
    min: Decimal | None
    max: Decimal | None
    actual: int
    scheduled: int
    remaining: int | None
    status: str
    expected_by_today: Decimal | None


class CustomerAttainmentBody(BaseModel):
    customer_id: str
    owner: str | None
    segment: Segment
    year: int
    as_of: UtcInstant
    days_in_year: int
    elapsed_days: int
    days_by_segment: dict[str, int]
    on_target: bool
    lines: list[AttainmentLine]


class ReportLine(BaseModel):
    owner: str | None
    segment: Segment
    customers: int
    on_target: int
    share_on_target: Decimal
    actual: int
    recommended_min: Decimal
    recommended_max: Decimal
    expected_by_today: Decimal
    scheduled: int
    actual_by_type: dict[str, int]


class AttainmentReport(BaseModel):
    year: int
    as_of: UtcInstant
    owner: str | None
    segment: Segment | None
    rows: list[ReportLine]


def attainment_router(
    consumer_view: ActivityEventsConsumer,
    app: SegmentationApplication,
    auth: Authenticator,
    clock: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter(tags=["attainment"], route_class=StrictRoute)
    Caller = Annotated[Principal, Depends(auth.principal)]

    @router.get(
        "/customers/{customer_id}/attainment",
        response_model=CustomerAttainmentBody,
        responses={**CSV_RESPONSE, **error_responses(404)},
        summary="A customer's meetings against the year's targets (CSV with Accept: text/csv)",
    )
    def customer_attainment(
        customer_id: CustomerIdPath, request: Request, caller: Caller, year: Year = None
    ) -> CustomerAttainmentBody | Response:
        now = clock()
        found = consumer_view.customer_attainment(customer_id, year or local_date(now).year, now)
        body = customer_body(found)
        if wants_csv(request):
            return csv_response(customer_csv(body))
        return body

    @router.get(
        "/reports/attainment",
        response_model=AttainmentReport,
        responses={**CSV_RESPONSE, **error_responses(403)},
        summary="Per consultant and segment: share of customers on target, meetings vs targets",
    )
    def report(
        request: Request,
        caller: Caller,
        year: Year = None,
        owner: OwnerQuery = None,
        segment: Segment | None = None,
    ) -> AttainmentReport | Response:
        wanted = reported_owner(caller, owner)
        now = clock()
        chosen = year or local_date(now).year
        rows = consumer_view.report(chosen, now, owner=wanted, segment=segment)
        body = AttainmentReport(
            year=chosen,
            as_of=now,
            owner=wanted,
            segment=segment,
            rows=[report_line(r) for r in rows],
        )
        if wants_csv(request):
            return csv_response(report_csv(body))
        return body

    return router


def reported_owner(caller: Principal, owner: str | None) -> str | None:
    """Whose customers a report covers: a report by consultant is for managers (any or all
    owners) and for that consultant only (their own, whatever they asked)."""
    wanted = normalize_user_id(owner) if owner else None
    if caller.is_manager or caller.is_service:
        return wanted
    if wanted is not None and wanted != caller.user_id:
        raise ApiError(403, "forbidden", "a consultant sees only their own customers")
    return caller.user_id


def wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "").lower()


def customer_body(found: CustomerAttainment) -> CustomerAttainmentBody:
    item = found.attainment
    lines = [
        AttainmentLine(
            type=line.type,
            type_label=line.type.label,
            counted=True,
            min=line.min,
            max=line.max,
            actual=line.actual,
            scheduled=found.scheduled.get(line.type, 0),
            remaining=line.remaining,
            status=line.status.value,
            expected_by_today=line.expected_by_today,
        )
        for line in item.lines.values()
    ]
    lines += [
        AttainmentLine(
            type=kind,
            type_label=kind.label,
            counted=False,
            min=None,
            max=None,
            actual=item.beside.get(kind, 0),
            scheduled=found.scheduled.get(kind, 0),
            remaining=None,
            status="beside",
            expected_by_today=None,
        )
        for kind in REPORTED_BESIDE
    ]
    return CustomerAttainmentBody(
        customer_id=found.customer_id,
        owner=found.owner,
        segment=found.segment,
        year=item.year,
        as_of=found.as_of,
        days_in_year=item.days_in_year,
        elapsed_days=item.elapsed_days,
        days_by_segment={s.value: n for s, n in item.days_by_segment.items()},
        on_target=found.on_target,
        lines=lines,
    )


def report_line(row: ReportRow) -> ReportLine:
    return ReportLine(
        owner=row.owner,
        segment=row.segment,
        customers=row.customers,
        on_target=row.on_target,
        share_on_target=row.share_on_target,
        actual=row.actual,
        recommended_min=row.recommended_min,
        recommended_max=row.recommended_max,
        expected_by_today=row.expected_by_today,
        scheduled=row.scheduled,
        actual_by_type={t.value: n for t, n in row.by_type.items()},
    )


def customer_csv(body: CustomerAttainmentBody) -> list[Sequence[object]]:
    header = (
        "customer_id", "year", "segment", "type", "type_label", "counted", "min", "max",
        "actual", "scheduled", "remaining", "status", "status_label", "expected_by_today",
    )  # fmt: skip
    return [header] + [
        (
            body.customer_id,
            body.year,
            body.segment.value,
            line.type.value,
            line.type_label,
            "yes" if line.counted else "no",
            _text(line.min),
            _text(line.max),
            line.actual,
            line.scheduled,
            _text(line.remaining),
            line.status,
            STATUS_LABELS[line.status],
            _text(line.expected_by_today),
        )
        for line in body.lines
    ]


def report_csv(body: AttainmentReport) -> list[Sequence[object]]:
    header = (
        "year", "owner", "segment", "customers", "on_target", "share_on_target", "actual",
        "recommended_min", "recommended_max", "expected_by_today", "scheduled",
    )  # fmt: skip
    return [header] + [
        (
            body.year,
            row.owner or "",
            row.segment.value,
            row.customers,
            row.on_target,
            row.share_on_target,
            row.actual,
            row.recommended_min,
            row.recommended_max,
            row.expected_by_today,
            row.scheduled,
        )
        for row in body.rows
    ]


def csv_response(rows: list[Sequence[object]]) -> Response:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return Response(out.getvalue(), media_type=CSV_TYPE)


def _text(value: object) -> str:
    return "" if value is None else str(value)


__all__ = ["attainment_router"]
