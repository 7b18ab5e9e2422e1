"""The activity service's HTTP API: FastAPI app factory, routes and error mapping.

No `from __future__ import annotations` here: FastAPI resolves `Annotated[..., Depends(x)]`
hints at route definition time, and `x` is local to the factory.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from crm_platform.auth import Authenticator, Principal
from crm_platform.http import (
    API_ERROR_STATUSES,
    ApiError,
    StrictRoute,
    error_responses,
    install_api_docs,
    install_error_handlers,
    location,
)
from crm_platform.http.conditional import (
    IdemKey,
    IfMatch,
    etag,
    expected_version,
    idempotency_key,
)
from crm_platform.http.refusals import install_refusal_handlers
from crm_platform.http.uploads import CSV_BODY, UploadLimits, csv_lines, spooled_body
from crm_platform.idempotency import IdempotencyKey
from crm_platform.ops import ops_router
from crm_platform.values import CustomerIdPath, InstantQuery, utc_text
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from activity.application import ActivityApplication, Outcome
from activity.domain import PLANNED, Activity
from activity.imports import ActivityImport, ImportResult
from activity.read_api import LOG_POSITION
from activity.schemas import (
    ActivityOut,
    AttachmentIn,
    CancelIn,
    CompleteIn,
    DiscoveryProfileOut,
    EditIn,
    HistoryEntry,
    ImportOut,
    MoveIn,
    PlanIn,
    ReassignIn,
    RegistrationIn,
    RetypeIn,
    WarningOut,
)

IMPORT_PATH = "/imports"
_BASE_ATTRIBUTES = {"originator_id", "originator_version", "timestamp", "originator_topic", "actor"}


@dataclass
class ActivityApi:
    """What the routes need; built by the entry point (or a test) and handed in."""

    app: ActivityApplication
    auth: Authenticator
    checks: Mapping[str, Callable[[], object]] = field(default_factory=dict)
    extra_routers: list[APIRouter] = field(default_factory=list)
    max_body_bytes: int = 1_048_576
    max_import_bytes: int = 256 * 1_048_576
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # The owner's other planned activities overlapping an activity's time (a warning only:
    # a double booking is the consultant's call). Read from the read model, so one planned
    # within its lag (milliseconds) may go unmentioned.
    overlaps: Callable[[Activity], list[UUID]] = field(default=lambda _: [])


def create_app(api: ActivityApi, *, root_path: str = "") -> FastAPI:
    web = FastAPI(
        title="CRM activity service",
        version="1",
        root_path=root_path,
        description="Customer activities by the sales guide's rules R1–R10.",
        responses=error_responses(*API_ERROR_STATUSES),
    )
    install_error_handlers(web)
    install_api_docs(web)
    web.add_middleware(
        UploadLimits,
        max_bytes=api.max_body_bytes,
        upload_bytes=api.max_import_bytes,
        upload_suffixes=(IMPORT_PATH,),
    )
    install_refusal_handlers(web)
    commands = Counter(
        "crm_activity_commands_total",
        "Commands handled, by outcome",
        ["command", "outcome"],
        registry=api.registry,
    )
    web.include_router(ops_router(api.registry, api.checks))
    web.include_router(_routes(api, commands))
    for router in api.extra_routers:
        web.include_router(router)
    return web


def _routes(api: ActivityApi, commands: Counter) -> APIRouter:
    router = APIRouter(tags=["activities"], route_class=StrictRoute)
    app = api.app
    Caller = Annotated[Principal, Depends(api.auth.principal)]
    changes = error_responses(404, 409, 412, 422)

    def keyed(
        caller: Principal, key: str | None, request: Request, body: BaseModel | None
    ) -> IdempotencyKey | None:
        key = idempotency_key(key)
        if key is None:
            return None
        payload = body.model_dump(mode="json") if body is not None else None
        return IdempotencyKey.of(caller.user_id, key, request.method, request.url.path, payload)

    def respond(name: str, outcome: Outcome, request: Request) -> Response:
        """The activity as the command left it. Serialised here, once: a returned model would
        be validated and encoded again by FastAPI (the route declares `response_model`)."""
        commands.labels(name, "replayed" if outcome.replayed else "ok").inc()
        headers = {"ETag": etag(outcome.activity.version)}
        if outcome.position is not None:
            headers[LOG_POSITION] = str(outcome.position)
        if outcome.status == 201:
            headers["Location"] = location(request, "activities", str(outcome.activity.id))
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        warnings: list[WarningOut] = []
        if name in ("plan", "move") and outcome.activity.status == PLANNED:
            warnings = [
                WarningOut(code="overlap", activity_id=i) for i in api.overlaps(outcome.activity)
            ]
        body = ActivityOut.of(outcome.activity, warnings).model_dump_json()
        return Response(body, outcome.status, headers, media_type="application/json")

    @router.post(
        "/activities",
        response_model=ActivityOut,
        status_code=201,
        responses=changes,
        summary="Plan an activity (R5); it goes to the owner's calendar (R7)",
    )
    def plan(body: PlanIn, caller: Caller, request: Request, key: IdemKey = None) -> Response:
        outcome = app.plan(caller, body.to_request(), idempotency=keyed(caller, key, request, body))
        return respond("plan", outcome, request)

    @router.post(
        "/activities/registrations",
        response_model=ActivityOut,
        status_code=201,
        responses=changes,
        summary="Register an activity held without being planned (R3, R4)",
    )
    def register(
        body: RegistrationIn,
        caller: Caller,
        request: Request,
        key: IdemKey = None,
    ) -> Response:
        outcome = app.register(
            caller, body.to_request(), idempotency=keyed(caller, key, request, body)
        )
        return respond("register", outcome, request)

    @router.post(
        "/activities/{activity_id:uuid}/move",
        response_model=ActivityOut,
        responses=changes,
        summary="Move to a future time, e.g. when the customer did not answer (R1)",
    )
    def move(
        activity_id: UUID,
        body: MoveIn,
        caller: Caller,
        request: Request,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> Response:
        outcome = app.move(
            caller,
            activity_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            reason=body.reason,
            note=body.note,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("move", outcome, request)

    @router.post(
        "/activities/{activity_id:uuid}/retype",
        response_model=ActivityOut,
        responses=changes,
        summary="Change the type (and channel) when the form changes (R2)",
    )
    def retype(
        activity_id: UUID,
        body: RetypeIn,
        caller: Caller,
        request: Request,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> Response:
        outcome = app.retype(
            caller,
            activity_id,
            type_=body.type,
            channel=body.channel,
            reason=body.reason,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("retype", outcome, request)

    @router.post(
        "/activities/{activity_id:uuid}/edit",
        response_model=ActivityOut,
        responses=changes,
        summary="Edit a planned activity's subject or agenda; the calendar follows",
    )
    def edit(
        activity_id: UUID,
        body: EditIn,
        caller: Caller,
        request: Request,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> Response:
        outcome = app.edit(
            caller,
            activity_id,
            subject=body.subject,
            agenda=body.agenda,
            keep_agenda="agenda" not in body.model_fields_set,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("edit", outcome, request)

    @router.post(
        "/activities/{activity_id:uuid}/reassign",
        response_model=ActivityOut,
        responses=changes,
        summary="Give the activity to another consultant (sales managers)",
    )
    def reassign(
        activity_id: UUID,
        body: ReassignIn,
        caller: Caller,
        request: Request,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> Response:
        outcome = app.reassign(
            caller,
            activity_id,
            owner=body.owner,
            reason=body.reason,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("reassign", outcome, request)

    @router.post(
        "/activities/{activity_id:uuid}/complete",
        response_model=ActivityOut,
        responses=changes,
        summary="Complete with note and next step (R6), next activity (R7/R8)",
    )
    def complete(
        activity_id: UUID,
        body: CompleteIn,
        caller: Caller,
        request: Request,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> Response:
        outcome = app.complete(
            caller,
            activity_id,
            body.to_request(),
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("complete", outcome, request)

    @router.post(
        "/activities/{activity_id:uuid}/cancel",
        response_model=ActivityOut,
        responses=changes,
        summary="Cancel, with the activity that replaces it (R8)",
    )
    def cancel(
        activity_id: UUID,
        body: CancelIn,
        caller: Caller,
        request: Request,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> Response:
        outcome = app.cancel(
            caller,
            activity_id,
            reason=body.reason,
            next_activity=body.next_activity.to_request() if body.next_activity else None,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("cancel", outcome, request)

    @router.post(
        "/activities/{activity_id:uuid}/attachments",
        response_model=ActivityOut,
        status_code=201,
        responses=changes,
        summary="Attach a document, e.g. the written proposal (R9)",
    )
    def attach(
        activity_id: UUID,
        body: AttachmentIn,
        caller: Caller,
        request: Request,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> Response:
        outcome = app.add_attachment(
            caller,
            activity_id,
            body.to_request(),
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("attach", outcome, request)

    @router.get(
        "/activities/{activity_id:uuid}",
        responses=error_responses(404),
        summary="An activity now, or as it was at `as_of`",
    )
    def get(
        activity_id: UUID,
        caller: Caller,
        response: Response,
        as_of: InstantQuery = None,
    ) -> ActivityOut:
        activity = app.activity(activity_id, as_of=as_of)
        response.headers["ETag"] = etag(activity.version)
        return ActivityOut.of(activity)

    @router.get(
        "/activities/{activity_id:uuid}/history",
        responses=error_responses(404),
        summary="Every event: what, when, who, why",
    )
    def history(activity_id: UUID, caller: Caller) -> list[HistoryEntry]:
        return [_history_entry(event) for event in app.history(activity_id)]

    @router.get(
        "/customers/{customer_id}/discovery-profile",
        responses=error_responses(404),
        summary="The customer's discovery profile now, or at `as_of` (R10)",
    )
    def discovery_profile(
        customer_id: CustomerIdPath, caller: Caller, as_of: InstantQuery = None
    ) -> DiscoveryProfileOut:
        profile, revision, event = app.discovery_profile(customer_id, as_of=as_of)
        return DiscoveryProfileOut(
            customer_id=customer_id,
            revision=revision,
            recorded_at=event.timestamp,
            recorded_by=event.actor,
            activity_id=event.activity_id,
            profile=profile,
        )

    @router.post(
        IMPORT_PATH,
        responses=error_responses(403, 413, 415, 422),
        summary="Going live: import the previous CRM's held activities from CSV (managers)",
        description=(
            "Columns: external_id, customer_id, owner, type, channel, held_at, note "
            "(and optionally subject). Bad rows are reported with their line numbers; the "
            "rest is imported. Importing the same file again adds nothing."
        ),
        openapi_extra=CSV_BODY,
    )
    async def import_activities(request: Request, caller: Caller) -> ImportOut:
        if not (caller.is_manager or caller.is_service):
            raise ApiError(403, "forbidden", "only a sales manager may import activities")
        spool = await spooled_body(request)
        try:
            result = await run_in_threadpool(_run_import, app, caller, spool)
        finally:
            spool.close()
        commands.labels("import", "ok").inc()
        return ImportOut.of(result)

    return router


def _run_import(app: ActivityApplication, caller: Principal, spool: Any) -> ImportResult:
    with csv_lines(spool) as lines:
        return ActivityImport(app, caller).run(lines)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _history_entry(event: Any) -> HistoryEntry:
    attributes = {k: v for k, v in vars(event).items() if k not in _BASE_ATTRIBUTES}
    why = attributes.get("reason") or attributes.get("note")
    moment: datetime = event.timestamp
    return HistoryEntry(
        version=event.originator_version,
        event=_snake(type(event).__name__),
        at=moment,
        actor=getattr(event, "actor", None),
        why=why if isinstance(why, str) else None,
        details=jsonable_encoder(attributes, custom_encoder={datetime: utc_text}),
    )
