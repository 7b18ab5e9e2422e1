"""The policy routes: read the policy (its ETag is its version), adopt a new one (If-Match,
Idempotency-Key; 202 and the recomputation to poll), and follow that recomputation.

Paths are the service's own, like `/customers`: `/policy` and `/recomputations/{id}`, so
`/segmentation/policy` where the service is served under `/segmentation` (`make run`). Their
first paths carried the prefix again (`/segmentation/segmentation/policy` there); those answer
308 Permanent Redirect to the new ones (method and body kept), undocumented.

A new policy's body is `policy_schemas.PolicyIn`: its shape is documented and checked at the
door (422 `validation_error`), the rules across its fields by `parse_policy` (422 `policy`).

No `from __future__ import annotations` here: FastAPI resolves the `Annotated` hints of the
routes at definition time.
"""

from typing import Annotated, Any
from uuid import UUID

from crm_platform.auth import Authenticator, Principal
from crm_platform.http import StrictRoute, error_responses, location
from crm_platform.http.conditional import (
    IdemKey,
    IfMatch,
    etag,
    expected_version,
    idempotency_key,
)
from crm_platform.idempotency import IdempotencyKey
from crm_platform.values import utc_text
from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import RedirectResponse
from prometheus_client import Counter

from segmentation.application import SegmentationApplication
from segmentation.policy import AdoptedPolicy
from segmentation.policy_schemas import PolicyIn
from segmentation.schemas import PolicyAccepted, RecomputationOut


def policy_routes(
    app: SegmentationApplication, auth: Authenticator, commands: Counter
) -> APIRouter:
    router = APIRouter(tags=["policy"], route_class=StrictRoute)
    Caller = Annotated[Principal, Depends(auth.principal)]

    @router.get("/policy", summary="The policy in force; its ETag is its version")
    def get_policy(caller: Caller, response: Response) -> dict[str, Any]:
        adopted = app.policy()
        response.headers["ETag"] = etag(adopted.version)
        return policy_body(adopted)

    @router.put(
        "/policy",
        status_code=202,
        responses=error_responses(409, 412, 422),
        summary="Adopt a new policy (sales managers); every customer is then recomputed",
        description=(
            "The body is the policy as GET shows it (what GET adds about the adoption is "
            "ignored, so a GET body can be PUT back). A body that does not fit the schema is "
            "422 `validation_error`; the rules no schema can state are 422 `policy`, every "
            "problem in `errors`: the thresholds fall strictly (A > B > C > 0) and no band's "
            "`min` exceeds its `max`. 409 `policy_unchanged`: the same rules as the current "
            "version."
        ),
    )
    def put_policy(
        caller: Caller,
        request: Request,
        response: Response,
        body: Annotated[PolicyIn, Body(description="thresholds, targets, prioritized")],
        if_match: IfMatch = None,
        key: IdemKey = None,
    ) -> PolicyAccepted:
        idem = idempotency_key(key)
        policy = body.policy_json()
        outcome = app.set_policy(
            caller,
            policy,
            expected_version=expected_version(if_match),
            idempotency=(
                IdempotencyKey.of(caller.user_id, idem, request.method, request.url.path, policy)
                if idem
                else None
            ),
        )
        commands.labels("set_policy", "replayed" if outcome.replayed else "ok").inc()
        job = outcome.recomputation
        response.status_code = 202
        response.headers["ETag"] = etag(outcome.policy.version)
        response.headers["Location"] = location(request, "recomputations", str(job.id))
        if outcome.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return PolicyAccepted(
            policy_version=outcome.policy.version,
            recomputation_id=str(job.id),
            recomputation=RecomputationOut.of(job),
        )

    @router.get(
        "/recomputations/{recomputation_id}",
        responses=error_responses(404),
        summary="How far the recomputation after a policy change has come",
    )
    def recomputation(recomputation_id: UUID, caller: Caller) -> RecomputationOut:
        return RecomputationOut.of(app.recomputation(recomputation_id))

    # The first paths, with the prefix twice where the service runs under one.
    @router.api_route("/segmentation/policy", methods=["GET", "PUT"], include_in_schema=False)
    def moved_policy(request: Request) -> RedirectResponse:
        return RedirectResponse(location(request, "policy"), status_code=308)

    @router.get("/segmentation/recomputations/{recomputation_id}", include_in_schema=False)
    def moved_recomputation(recomputation_id: str, request: Request) -> RedirectResponse:
        target = location(request, "recomputations", recomputation_id)
        return RedirectResponse(target, status_code=308)

    return router


def policy_body(adopted: AdoptedPolicy) -> dict[str, Any]:
    """The policy as GET answers it: what `AdoptedPolicy.to_json` says, the adoption's time
    in UTC with `Z` as every time the APIs answer."""
    body = adopted.to_json()
    if adopted.adopted_at is not None:
        body["adopted_at"] = utc_text(adopted.adopted_at)
    return body
