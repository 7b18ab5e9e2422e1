"""The calendar-sync HTTP API: sync status, reconciliation, operations (and the feed).

No `from __future__ import annotations` here: FastAPI resolves `Annotated[..., Depends(x)]`
hints at route definition time, and `x` is local to the factory.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated
from uuid import UUID

from crm_contracts.enums import SyncStatus
from crm_contracts.patterns import MAILBOX_PATTERN
from crm_contracts.primitives import MAILBOX_MAX
from crm_platform.auth import Authenticator, Principal, Role
from crm_platform.http import (
    API_ERROR_STATUSES,
    ApiError,
    BodySizeLimit,
    StrictRoute,
    error_responses,
    install_api_docs,
    install_error_handlers,
)
from crm_platform.ops import ops_router
from crm_platform.values import UtcInstant
from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel, Field

from calendar_sync.domain import mailbox_of
from calendar_sync.lanes import LaneBusy
from calendar_sync.metrics import SyncMetrics
from calendar_sync.reconcile import Reconciler
from calendar_sync.state import SyncRecord, SyncState

# Statuses whose row carries why (the error, or the mailbox's Graph code).
_EXPLAINED = (SyncStatus.FAILED, SyncStatus.MAILBOX_UNAVAILABLE)


class SyncOut(BaseModel):
    activity_id: UUID
    status: SyncStatus
    mailbox: str
    outlook_event_id: str | None = Field(description="The calendar's id for the entry")
    activity_version: int = Field(description="The activity version the entry reflects")
    change_key: str | None
    error: str | None = Field(
        description="Why the last attempt failed, or the Graph code of the mailbox that "
        "refuses us (status mailbox_unavailable)"
    )
    failed_version: int | None = Field(description="The activity version that failed")
    updated_at: UtcInstant

    @classmethod
    def of(cls, record: SyncRecord) -> "SyncOut":
        failed = record.status in _EXPLAINED
        return cls(
            activity_id=UUID(record.activity_id),
            status=record.status,
            mailbox=record.mailbox,
            outlook_event_id=record.event_id,
            activity_version=record.version,
            change_key=record.change_key,
            error=record.error if failed else None,
            failed_version=record.error_version if failed else None,
            updated_at=record.updated_at,
        )


class ReconcileOut(BaseModel):
    owner: str
    checked: int
    outcomes: dict[str, int] = Field(
        description="unchanged, repaired, created, adopted, removed, deleted_in_outlook, "
        "kept_deleted, restored, leftover_removed, orphaned, unknown, busy, failed"
    )
    duplicates_removed: int = Field(description="Extra tagged entries deleted")
    errors: list[str]


class MailboxOut(BaseModel):
    mailbox: str
    paused_until: UtcInstant | None = Field(description="When its lane looks again")
    reason: str | None = Field(description="throttled, budget, unreachable, unavailable or retry")
    code: str | None = Field(description="Graph's code while the mailbox is unavailable")
    unavailable_since: UtcInstant | None
    checks: int = Field(description="Failed looks in a row (the backoff grows with them)")


@dataclass
class SyncApi:
    """What the routes need; built by service.py (or a test) and handed in."""

    state: SyncState
    reconciler: Reconciler
    auth: Authenticator
    metrics: SyncMetrics
    checks: Mapping[str, Callable[[], object]] = field(default_factory=dict)
    extra_routers: list[APIRouter] = field(default_factory=list)
    max_body_bytes: int = 1_048_576


def create_app(api: SyncApi, *, root_path: str = "") -> FastAPI:
    web = FastAPI(
        title="CRM calendar-sync",
        version="1",
        root_path=root_path,
        description="Planned activities in the consultants' calendars, exactly once.",
        responses=error_responses(*API_ERROR_STATUSES),
    )
    install_error_handlers(web)
    install_api_docs(web)
    web.add_middleware(BodySizeLimit, max_bytes=api.max_body_bytes)
    web.include_router(ops_router(api.metrics.registry, api.checks))
    web.include_router(_routes(api))
    for router in api.extra_routers:
        web.include_router(router)
    return web


def _routes(api: SyncApi) -> APIRouter:
    router = APIRouter(tags=["sync"], route_class=StrictRoute)
    Caller = Annotated[Principal, Depends(api.auth.principal)]
    Operator = Annotated[
        Principal, Depends(api.auth.require_roles(Role.SALES_MANAGER, Role.SERVICE))
    ]

    @router.get(
        "/sync/activities/{activity_id:uuid}",
        responses=error_responses(404),
        summary="Where an activity's calendar entry stands",
    )
    def sync_status(activity_id: UUID, caller: Caller) -> SyncOut:
        record = api.state.get(str(activity_id))
        # Consultants see their own activities only; a stranger's is "not found" to them.
        if record is None or not caller.may_act_for(record.owner):
            raise ApiError(404, "not_found", f"No calendar entry is known for {activity_id}.")
        return SyncOut.of(record)

    @router.post(
        "/sync/reconcile",
        responses=error_responses(403, 409),
        summary="Compare an owner's calendar with the CRM and repair the drift",
    )
    def reconcile(
        caller: Operator,
        owner: Annotated[str, Query(min_length=3, max_length=MAILBOX_MAX, pattern=MAILBOX_PATTERN)],
    ) -> ReconcileOut:
        try:
            report = api.reconciler.reconcile(mailbox_of(owner))
        except LaneBusy as busy:
            # The mailbox's lane is at work elsewhere, or Graph asked us to wait: later.
            wait = 5
            if busy.until is not None:
                wait = max(1, int((busy.until - api.reconciler.clock()).total_seconds()) + 1)
            raise ApiError(
                409,
                "mailbox_busy",
                f"The calendar of {busy.mailbox} is {busy.reason}; try again later.",
                headers={"Retry-After": str(wait)},
            ) from busy
        return ReconcileOut(
            owner=report.owner,
            checked=report.checked,
            outcomes=report.outcomes,
            duplicates_removed=report.duplicates_removed,
            errors=report.errors,
        )

    @router.get(
        "/sync/mailboxes",
        responses=error_responses(403),
        summary="Mailboxes whose lane is paused or that refuse calendar-sync",
    )
    def mailboxes(caller: Operator) -> list[MailboxOut]:
        return [
            MailboxOut(
                mailbox=m.mailbox,
                paused_until=m.paused_until,
                reason=m.reason,
                code=m.code,
                unavailable_since=m.since,
                checks=m.checks,
            )
            for m in api.state.troubled_mailboxes()
        ]

    return router
