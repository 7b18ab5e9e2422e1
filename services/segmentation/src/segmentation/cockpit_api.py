"""Read-only routes the sales cockpit needs beyond the attainment report: who is behind.

`GET /reports/behind-target` lists the customers whose completed meetings of the year are
behind what their targets expect by today (the pro-rated minimum accrued so far), the
largest shortfall first. The team report (`/reports/attainment`) says how many customers
are on target per consultant and segment; this one names them, so a consultant knows whom to
call and a manager what to talk about in coaching.

A report about a person's performance: managers and services see anyone's, a consultant only
their own (without `owner=` they get their own), as `/reports/attainment`.

No `from __future__ import annotations`: FastAPI resolves the `Annotated[..., Depends(x)]`
hints when the routes are defined, and `x` is local to the factory.
"""

from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from crm_contracts.enums import ActivityType, Segment
from crm_platform.auth import Authenticator, Principal
from crm_platform.http import StrictRoute, error_responses
from crm_platform.values import OwnerQuery, UtcInstant
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from segmentation.application import SegmentationApplication
from segmentation.attainment import ActivityEventsConsumer, Counts
from segmentation.attainment_api import reported_owner
from segmentation.registry import RegistryRow
from segmentation.rules import local_date
from segmentation.targets import SegmentHistory, attainment

Year = Annotated[int | None, Query(ge=2000, le=2100, description="Default: this year")]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many customers")]


class BehindLine(BaseModel):
    type: ActivityType
    type_label: str
    actual: int
    expected_by_today: Decimal  # the pro-rated minimum accrued so far, one decimal
    min: Decimal  # the whole year's minimum
    max: Decimal


class BehindCustomer(BaseModel):
    customer_id: str
    name: str
    owner: str | None
    segment: Segment
    shortfall: Decimal  # meetings behind, summed over the lines below
    lines: list[BehindLine]  # only the meeting types that are behind


class BehindReport(BaseModel):
    year: int
    as_of: UtcInstant
    owner: str | None
    segment: Segment | None
    total: int  # customers behind, of which `items` holds the first `limit`
    items: list[BehindCustomer]


def cockpit_router(
    consumer_view: ActivityEventsConsumer,
    app: SegmentationApplication,
    auth: Authenticator,
    clock: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter(tags=["attainment"], route_class=StrictRoute)
    Caller = Annotated[Principal, Depends(auth.principal)]

    @router.get(
        "/reports/behind-target",
        response_model=BehindReport,
        responses=error_responses(403),
        summary="Customers whose meetings are behind what their targets expect by today",
    )
    def behind_target(
        caller: Caller,
        year: Year = None,
        owner: OwnerQuery = None,
        segment: Segment | None = None,
        limit: Limit = 50,
    ) -> BehindReport:
        wanted = reported_owner(caller, owner)
        now = clock()
        chosen = year or local_date(now).year
        found = sorted(
            _behind(consumer_view, app, chosen, now, wanted, segment),
            key=lambda c: (-c.shortfall, c.name.casefold(), c.customer_id),
        )
        return BehindReport(
            year=chosen,
            as_of=now,
            owner=wanted,
            segment=segment,
            total=len(found),
            items=found[:limit],
        )

    return router


def _behind(
    consumer_view: ActivityEventsConsumer,
    app: SegmentationApplication,
    year: int,
    now: datetime,
    owner: str | None,
    segment: Segment | None,
) -> Iterator[BehindCustomer]:
    policy = app.current_policy().policy
    actual, _ = consumer_view.counts(year, now)
    today = local_date(now)
    shared: dict[Any, Any] = {}
    for page in consumer_view.registry_pages(owner, segment):
        histories = consumer_view.histories(page, year)
        yield from _behind_in(page, histories, policy, actual, year, today, shared)


def _behind_in(
    page: list[RegistryRow],
    histories: dict[str, SegmentHistory],
    policy: Any,
    actual: Counts,
    year: int,
    today: date,
    shared: dict[Any, Any],
) -> Iterator[BehindCustomer]:
    for customer in page:
        item = attainment(
            year,
            histories[customer.customer_id],
            policy,
            actual.get(customer.customer_id, {}),
            today=today,
            shared=shared,
        )
        lines = [
            BehindLine(
                type=line.type,
                type_label=line.type.label,
                actual=line.actual,
                expected_by_today=line.expected_by_today,
                min=line.min,
                max=line.max,
            )
            for line in item.lines.values()
            if line.actual < line.expected_by_today
        ]
        if lines:
            yield BehindCustomer(
                customer_id=customer.customer_id,
                name=customer.name,
                owner=customer.owner,
                segment=Segment(customer.segment),
                shortfall=sum((ln.expected_by_today - ln.actual for ln in lines), Decimal(0)),
                lines=lines,
            )
