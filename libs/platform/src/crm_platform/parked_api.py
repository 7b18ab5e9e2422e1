"""`/ops/parked`: what a service's workers parked, and asking them to try again.

No `from __future__ import annotations` here: FastAPI resolves `Annotated[..., Depends(x)]`
hints at route definition time, and `x` is local to the factory.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from crm_platform.auth import Authenticator, Principal, Role
from crm_platform.http.errors import ApiError, error_responses
from crm_platform.http.routes import StrictRoute
from crm_platform.parking import ParkedEvent, ParkingLot

EntryId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


class ParkedOut(BaseModel):
    id: str
    worker: str = Field(description="Who parked it, e.g. `activity_rm/activity` (a read model).")
    position: str = Field(description="Where it sits in what the worker reads.")
    subject: str = Field(description="The activity or customer it concerns.")
    error: str = Field(description="Why it could not be processed (or what it waits behind).")
    state: str = Field(description="`parked`, or `retry` until the worker has tried again.")
    attempts: int
    parked_at: datetime
    payload: dict[str, Any] | None

    @classmethod
    def of(cls, entry: ParkedEvent) -> "ParkedOut":
        return cls(
            id=entry.id,
            worker=entry.worker,
            position=entry.position,
            subject=entry.subject,
            error=entry.error,
            state=entry.state,
            attempts=entry.attempts,
            parked_at=entry.parked_at,
            payload=dict(entry.payload) if entry.payload is not None else None,
        )


class RetryAccepted(BaseModel):
    marked: list[str] = Field(
        description="The entries marked for retry: this one and those of its subject behind it."
    )


def parked_router(lot: ParkingLot, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["operations"], route_class=StrictRoute)
    Operator = Annotated[Principal, Depends(auth.require_roles(Role.SALES_MANAGER, Role.SERVICE))]

    @router.get("/ops/parked", summary="Events the workers could not process, oldest first")
    def listing(
        caller: Operator,
        worker: Annotated[
            str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_./:@-]+$")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[ParkedOut]:
        return [ParkedOut.of(entry) for entry in lot.entries(worker=worker, limit=limit)]

    @router.get(
        "/ops/parked/{entry_id}", responses=error_responses(404), summary="One parked event"
    )
    def one(entry_id: EntryId, caller: Operator) -> ParkedOut:
        entry = lot.get(entry_id)
        if entry is None:
            raise ApiError(404, "not_found", f"No parked event {entry_id}.")
        return ParkedOut.of(entry)

    @router.post(
        "/ops/parked/{entry_id}/retry",
        status_code=202,
        responses=error_responses(404),
        summary="Ask the worker to process it again (after a fix); it does on its next round",
    )
    def retry(entry_id: EntryId, caller: Operator, response: Response) -> RetryAccepted:
        marked = lot.request_retry(entry_id)
        if not marked:
            raise ApiError(404, "not_found", f"No parked event {entry_id}.")
        return RetryAccepted(marked=marked)

    return router
