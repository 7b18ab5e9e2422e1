"""Routes over the activity read models: lists, timeline, reports.

No `from __future__ import annotations`: FastAPI resolves the `Annotated[..., Depends(x)]`
hints when the routes are defined, and `x` is local to the factory.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from crm_contracts.enums import ActivityType, Segment
from crm_platform.auth import Authenticator, Principal
from crm_platform.http import ApiError, StrictRoute, error_responses
from crm_platform.values import (
    CustomerIdPath,
    CustomerIdQuery,
    InstantQuery,
    OwnerQuery,
    UntilQuery,
)
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from activity.read_queries import (
    DEFAULT_PAGE,
    MAX_PAGE,
    ActivityQueries,
    ActivityRow,
    Gap,
    InvalidCursor,
    MoveStats,
    OwnerMoves,
    TimelineEntry,
)

T = TypeVar("T")
Status = Annotated[str | None, Query(pattern="^(planned|completed|cancelled)$")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Cursor = Annotated[
    str | None,
    Query(max_length=512, pattern=r"^[A-Za-z0-9_-]*$", description="From the previous page"),
]
From = Annotated[InstantQuery, Query(alias="from")]
To = Annotated[UntilQuery, Query(alias="to")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def read_router(
    queries: ActivityQueries, auth: Authenticator, clock: Callable[[], datetime]
) -> APIRouter:
    router = APIRouter(tags=["read models"], route_class=StrictRoute)
    Caller = Annotated[Principal, Depends(auth.principal)]
    bad_cursor = error_responses(422)

    def page(fetch: Callable[[], tuple[list[T], str | None]]) -> Page[T]:
        try:
            items, next_cursor = fetch()
        except InvalidCursor as error:
            raise ApiError(
                422,
                "invalid_cursor",
                str(error) or "unknown cursor",
                details={"field": "query.cursor"},
            ) from None
        return Page[T](items=items, next_cursor=next_cursor)

    @router.get(
        "/activities",
        responses=bad_cursor,
        summary="Activities by owner, customer, status, type and time, by start time",
    )
    def list_activities(
        caller: Caller,
        owner: OwnerQuery = None,
        customer_id: CustomerIdQuery = None,
        status: Status = None,
        type: ActivityType | None = None,
        starts_from: From = None,
        starts_to: To = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_PAGE,
    ) -> Page[ActivityRow]:
        if starts_from and starts_to and starts_to <= starts_from:
            raise ApiError(
                422, "invalid_range", "`to` must be after `from`", details={"field": "query.to"}
            )
        return page(
            lambda: queries.list_activities(
                owner=owner.lower() if owner else None,
                customer_id=customer_id,
                status=status,
                type=type.value if type else None,
                starts_from=starts_from,
                starts_to=starts_to,
                cursor=cursor,
                limit=limit,
            )
        )

    @router.get(
        "/reports/overdue",
        responses=bad_cursor,
        summary="Planned activities whose time has passed: hold, move (R1) or cancel",
    )
    def overdue(
        caller: Caller,
        owner: OwnerQuery = None,
        customer_id: CustomerIdQuery = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_PAGE,
    ) -> Page[ActivityRow]:
        return page(
            lambda: queries.overdue(
                clock(),
                owner=owner.lower() if owner else None,
                customer_id=customer_id,
                cursor=cursor,
                limit=limit,
            )
        )

    @router.get(
        "/customers/{customer_id}/timeline",
        responses=bad_cursor,
        summary="Everything that happened with a customer's activities, newest first",
    )
    def timeline(
        customer_id: CustomerIdPath,
        caller: Caller,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_PAGE,
    ) -> Page[TimelineEntry]:
        return page(lambda: queries.timeline(customer_id, cursor=cursor, limit=limit))

    @router.get(
        "/reports/without-future-activity",
        summary="Prioritized customers without a future activity (R8 gaps), oldest first",
    )
    def without_future_activity(
        caller: Caller, owner: OwnerQuery = None, segment: Segment | None = None
    ) -> list[Gap]:
        return queries.gaps(
            owner=owner.lower() if owner else None, segment=segment.value if segment else None
        )

    @router.get(
        "/reports/moves",
        responses=error_responses(403),
        summary="How often work gets pushed: moves by consultant and reason",
    )
    def moves(
        caller: Caller,
        moved_from: From = None,
        moved_to: To = None,
    ) -> MoveStats:
        stats = queries.move_stats(moved_from, moved_to)
        if caller.is_manager or caller.is_service:
            return stats
        # A report by consultant is for managers and for that consultant only.
        mine = [o for o in stats.owners if o.owner == caller.user_id]
        return MoveStats(
            moved_from=stats.moved_from,
            moved_to=stats.moved_to,
            total=sum(o.moves for o in mine),
            by_reason=_reasons(mine),
            owners=mine,
        )

    return router


def _reasons(owners: list[OwnerMoves]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for owner in owners:
        for reason, count in owner.by_reason.items():
            totals[reason] = totals.get(reason, 0) + count
    return totals


__all__ = ["Gap", "read_router"]
