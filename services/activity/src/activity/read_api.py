"""Routes over the activity read models: lists, timeline, reports.

No `from __future__ import annotations`: FastAPI resolves the `Annotated[..., Depends(x)]`
hints when the routes are defined, and `x` is local to the factory.
"""

import time
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

# Every command's response header: where its save ends in the activity log.
LOG_POSITION = "Log-Position"
# The read models follow the log 5–20 ms behind; this bound only matters while the
# projector is down or far behind, when an honest 503 beats a stale answer.
CATCH_UP_WAIT_S = 3.0
_CATCH_UP_POLL_S = 0.005
MIN_POSITION_HELP = (
    f"Read your own writes: the `{LOG_POSITION}` header of a command's response. The answer "
    "then includes that command's effect: the read waits until the read models have caught "
    f"up with it, at most {CATCH_UP_WAIT_S:g} s, and answers 503 `not_caught_up` (with "
    "Retry-After) if they have not."
)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def read_router(
    queries: ActivityQueries,
    auth: Authenticator,
    clock: Callable[[], datetime],
    caught_up: Callable[[int], bool],
) -> APIRouter:
    """`caught_up(position)`: whether the read models reflect the log up to `position`."""

    def consistent(
        min_position: Annotated[
            int | None,
            Query(ge=0, le=2**63 - 1, description=MIN_POSITION_HELP),
        ] = None,
    ) -> None:
        if min_position is None:
            return
        deadline = time.monotonic() + CATCH_UP_WAIT_S
        while not caught_up(min_position):
            if time.monotonic() >= deadline:
                raise ApiError(
                    503,
                    "not_caught_up",
                    f"the read models have not reached log position {min_position} yet; "
                    "try again shortly",
                    details={"field": "query.min_position"},
                    headers={"Retry-After": "1"},
                )
            time.sleep(_CATCH_UP_POLL_S)

    router = APIRouter(
        tags=["read models"], route_class=StrictRoute, dependencies=[Depends(consistent)]
    )
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
