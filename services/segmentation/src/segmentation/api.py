"""The segmentation service's HTTP API: FastAPI app factory, customer and policy routes.

No `from __future__ import annotations` here: FastAPI resolves `Annotated[..., Depends(x)]`
hints at route definition time, and `x` is local to the factory.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from crm_contracts.enums import Segment
from crm_contracts.patterns import NAME_PATTERN
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
from crm_platform.values import CustomerIdPath, Day, OwnerQuery, utc_text
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel
from starlette.convertors import Convertor, register_url_convertor

from segmentation.application import NewCustomer, Outcome, Search, SegmentationApplication
from segmentation.imports import CustomerImport, ImportResult
from segmentation.policy_api import policy_routes
from segmentation.rules import NAME_MAX, PotentialSource
from segmentation.schemas import (
    AgreementIn,
    CustomerIn,
    CustomerOut,
    CustomerPage,
    CustomerPatch,
    HistoryEntry,
    ImportOut,
    OwnerIn,
    PotentialIn,
    Rejected,
    ValueProgrammeIn,
    snake,
)

_BASE_ATTRIBUTES = {"originator_id", "originator_version", "timestamp", "originator_topic", "actor"}
IMPORT_PATH = "/customers/import"
# How history details put what JSON has no type for: amounts exact, times in UTC with Z.
_DETAIL_ENCODERS: dict[Any, Callable[[Any], Any]] = {datetime: utc_text, Decimal: str}


SearchQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=NAME_MAX,
        pattern=NAME_PATTERN,
        description="A CVR number (eight digits), found exactly; or words, each the beginning "
        'of a word of the name, ignoring case and accents ("kobenhavn blom" finds '
        '"Københavns Blomster"). Without a letter or a digit it finds nothing.',
    ),
]


class _CustomerIdSegment(Convertor[str]):
    """Any path segment but `import`, which is the import's path, never a customer's."""

    regex = r"(?!import(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("customer_id", _CustomerIdSegment())

Attainment = Callable[[str], Mapping[str, Any] | None]


@dataclass
class SegmentationApi:
    """What the routes need; built by the entry point (or a test) and handed in."""

    app: SegmentationApplication
    auth: Authenticator
    checks: Mapping[str, Callable[[], object]] = field(default_factory=dict)
    extra_routers: list[APIRouter] = field(default_factory=list)
    max_body_bytes: int = 1_048_576
    max_import_bytes: int = 256 * 1_048_576
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # The hook for this year's attainment on `GET /customers/{id}` (wired by the service).
    attainment: Attainment | None = None


def create_app(api: SegmentationApi, *, root_path: str = "") -> FastAPI:
    web = FastAPI(
        title="CRM segmentation service",
        version="1",
        root_path=root_path,
        description="Customers, their potentials, agreements and segments; the policy.",
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
        "crm_segmentation_commands_total",
        "Commands handled, by outcome",
        ["command", "outcome"],
        registry=api.registry,
    )
    web.include_router(ops_router(api.registry, api.checks))
    web.include_router(_customer_routes(api, commands))
    web.include_router(policy_routes(api.app, api.auth, commands))
    for router in api.extra_routers:
        web.include_router(router)
    return web


def keyed(
    caller: Principal, key: str | None, request: Request, body: BaseModel | None
) -> IdempotencyKey | None:
    """The idempotency key of one command."""
    key = idempotency_key(key)
    if key is None:
        return None
    payload = body.model_dump(mode="json") if body is not None else None
    return IdempotencyKey.of(caller.user_id, key, request.method, request.url.path, payload)


def _customer_routes(api: SegmentationApi, commands: Counter) -> APIRouter:
    router = APIRouter(tags=["customers"], route_class=StrictRoute)
    app = api.app
    Caller = Annotated[Principal, Depends(api.auth.principal)]
    changes = error_responses(404, 409, 412, 422)

    def out(customer: Any) -> CustomerOut:
        result = CustomerOut.of(customer)
        if api.attainment is not None:
            found = api.attainment(result.customer_id)
            result.attainment = dict(found) if found is not None else None
        return result

    def respond(name: str, outcome: Outcome, request: Request, response: Response) -> CustomerOut:
        commands.labels(name, "replayed" if outcome.replayed else "ok").inc()
        response.status_code = outcome.status
        response.headers["ETag"] = etag(outcome.customer.version)
        if outcome.status == 201:
            response.headers["Location"] = location(
                request, "customers", outcome.customer.customer_id
            )
        if outcome.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return CustomerOut.of(outcome.customer)

    @router.post("/customers", status_code=201, responses=changes, summary="Register a customer")
    def register(
        body: CustomerIn, caller: Caller, request: Request, response: Response, key: IdemKey = None
    ) -> CustomerOut:
        if body.potential_dkk is None:
            outcome = app.register_customer(
                caller,
                name=body.name,
                customer_id=body.customer_id,
                cvr=body.cvr,
                owner=body.owner,
                idempotency=keyed(caller, key, request, body),
            )
            return respond("register", outcome, request, response)
        # With a potential: one transaction for both (managers only, as for any potential).
        item = NewCustomer(
            name=body.name,
            customer_id=body.customer_id,
            cvr=body.cvr,
            owner=body.owner,
            potential=body.potential_dkk,
            source=PotentialSource.MANUAL,
        )
        outcome = app.register_assessed_customer(
            caller, item, idempotency=keyed(caller, key, request, body)
        )
        return respond("register", outcome, request, response)

    @router.get(
        "/customers/{customer_id:customer_id}", responses=error_responses(404), summary="A customer"
    )
    def get(customer_id: CustomerIdPath, caller: Caller, response: Response) -> CustomerOut:
        view = app.customer(customer_id)
        response.headers["ETag"] = etag(view.version)
        return out(view.customer)

    @router.get(
        "/customers",
        summary="Customers in registration order, a page at a time; find them with q",
        responses=error_responses(422),
    )
    def listing(
        caller: Caller,
        segment: Segment | None = None,
        prioritized: bool | None = None,
        owner: OwnerQuery = None,
        q: SearchQuery = None,
        cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> CustomerPage:
        after = int(cursor or 0)
        search = Search.of(q) if q is not None else None
        items: list[CustomerOut] = []
        more = True
        # The registry filters by segment, owner and `q`; `prioritized` is judged here,
        # reading on until the page is full, so the cursor is always the last row looked at.
        while len(items) < limit and more:
            rows = app.customers(
                segment=segment, owner=owner, search=search, after=after, limit=limit
            )
            more = len(rows) == limit
            for row in rows:
                after = row.seq
                if prioritized is None or row.prioritized == prioritized:
                    items.append(CustomerOut.of(row))
                    if len(items) == limit:
                        break
        return CustomerPage(items=items, next_cursor=str(after) if len(items) == limit else None)

    @router.put(
        "/customers/{customer_id}/potential",
        responses=changes,
        summary="Assess the annual potential (sales managers)",
    )
    def potential(
        customer_id: CustomerIdPath,
        body: PotentialIn,
        caller: Caller,
        request: Request,
        response: Response,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> CustomerOut:
        outcome = app.assess_potential(
            caller,
            customer_id,
            amount=body.amount_dkk,
            source=body.source,
            note=body.note,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("assess_potential", outcome, request, response)

    @router.put(
        "/customers/{customer_id}/annual-agreement",
        responses=changes,
        summary="Record (or extend) the annual agreement (sales managers)",
    )
    def agreement(
        customer_id: CustomerIdPath,
        body: AgreementIn,
        caller: Caller,
        request: Request,
        response: Response,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> CustomerOut:
        outcome = app.start_agreement(
            caller,
            customer_id,
            starts_on=body.starts_on,
            ends_on=body.ends_on,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("start_agreement", outcome, request, response)

    @router.delete(
        "/customers/{customer_id}/annual-agreement",
        responses=changes,
        summary="End the annual agreement (default: yesterday was its last day)",
    )
    def end_agreement(
        customer_id: CustomerIdPath,
        caller: Caller,
        request: Request,
        response: Response,
        ends_on: Annotated[Day | None, Query(description="Its new last day")] = None,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> CustomerOut:
        outcome = app.end_agreement(
            caller,
            customer_id,
            ends_on=ends_on,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, None),
        )
        return respond("end_agreement", outcome, request, response)

    @router.put(
        "/customers/{customer_id}/value-programme",
        responses=changes,
        summary="Record the customer's membership of the value programme (sales managers)",
        description=(
            "The membership's days, both inclusive; without `ends_on` it is open-ended. While "
            "it is in force (today in Copenhagen within them) the customer is in "
            "`annual_agreement`, as with an annual agreement; the daily calendar moves it in "
            "and out on those days. One membership is on record: a PUT replaces the dates of "
            "the current or upcoming one. 422 `ends_on`: before `starts_on`, or before today "
            "(end a membership with DELETE); 409 `value_programme_unchanged`: these dates are "
            "on record already."
        ),
    )
    def value_programme(
        customer_id: CustomerIdPath,
        body: ValueProgrammeIn,
        caller: Caller,
        request: Request,
        response: Response,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> CustomerOut:
        outcome = app.set_value_programme(
            caller,
            customer_id,
            starts_on=body.starts_on,
            ends_on=body.ends_on,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("set_value_programme", outcome, request, response)

    @router.delete(
        "/customers/{customer_id}/value-programme",
        responses=changes,
        summary="End the value programme membership: yesterday was its last day",
        description=(
            "From today the membership is no longer in force (one that has not started yet is "
            "withdrawn). 409 `no_value_programme`: the customer has no current or upcoming "
            "membership."
        ),
    )
    def end_value_programme(
        customer_id: CustomerIdPath,
        caller: Caller,
        request: Request,
        response: Response,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> CustomerOut:
        outcome = app.end_value_programme(
            caller,
            customer_id,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, None),
        )
        return respond("end_value_programme", outcome, request, response)

    @router.put(
        "/customers/{customer_id}/owner",
        responses=changes,
        summary="Change the owner, the responsible consultant (sales managers)",
        description=(
            "The new owner is published in the customer's snapshot on `crm.customers.v1`. "
            "409 `owner_unchanged`: the customer is owned by them already."
        ),
    )
    def owner(
        customer_id: CustomerIdPath,
        body: OwnerIn,
        caller: Caller,
        request: Request,
        response: Response,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> CustomerOut:
        outcome = app.change_owner(
            caller,
            customer_id,
            owner=body.owner,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("change_owner", outcome, request, response)

    @router.patch(
        "/customers/{customer_id:customer_id}",
        responses=changes,
        summary="Rename (the customer's owner or a sales manager)",
        description=(
            "The body names the new name; the owner changes with PUT .../owner. 409 "
            "`name_unchanged`: the customer has that name already."
        ),
    )
    def patch(
        customer_id: CustomerIdPath,
        body: CustomerPatch,
        caller: Caller,
        request: Request,
        response: Response,
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> CustomerOut:
        outcome = app.rename(
            caller,
            customer_id,
            name=body.name,
            expected_version=expected_version(if_match),
            idempotency=keyed(caller, key, request, body),
        )
        return respond("rename", outcome, request, response)

    @router.get(
        "/customers/{customer_id}/history",
        responses=error_responses(404),
        summary="Every change: what, when, who, why",
    )
    def history(customer_id: CustomerIdPath, caller: Caller) -> list[HistoryEntry]:
        return [_history_entry(event) for event in app.history(customer_id)]

    @router.post(
        IMPORT_PATH,
        responses=error_responses(413, 415),
        summary="Import customers from CSV (sales managers); see the import's rules",
        openapi_extra=CSV_BODY,
    )
    async def import_customers(request: Request, caller: Caller) -> ImportOut:
        if not (caller.is_manager or caller.is_service):
            raise ApiError(403, "forbidden", "only a sales manager may import customers")
        spool = await spooled_body(request)
        try:
            result = await run_in_threadpool(_run_import, app, caller, spool)
        finally:
            spool.close()
        commands.labels("import", "ok").inc()
        return ImportOut(
            imported=result.imported,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=[
                Rejected(line=p.line, customer_id=p.customer_id, reasons=p.reasons)
                for p in result.rejected
            ],
        )

    return router


def _run_import(app: SegmentationApplication, caller: Principal, spool: Any) -> ImportResult:
    with csv_lines(spool) as lines:
        return CustomerImport(app, caller).run(lines)


def _history_entry(event: Any) -> HistoryEntry:
    attributes = {k: v for k, v in vars(event).items() if k not in _BASE_ATTRIBUTES}
    why = attributes.get("reason") or attributes.get("note")
    return HistoryEntry(
        version=event.originator_version,
        event=snake(type(event).__name__),
        at=event.timestamp,
        actor=getattr(event, "actor", None),
        why=why if isinstance(why, str) else None,
        details=jsonable_encoder(attributes, custom_encoder=_DETAIL_ENCODERS),
    )
