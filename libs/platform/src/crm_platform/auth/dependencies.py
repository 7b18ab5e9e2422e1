"""FastAPI dependencies that authenticate the caller and check their roles.

One `Authenticator` per app, built in the app factory from `AuthSettings`. Its `principal`
dependency differs by mode, and so do the security schemes the OpenAPI document declares for
every operation that depends on it (`components.securitySchemes` and the operation's
`security`; Swagger's "Authorize" then sends them on every "Try it out"):

- `jwt`: `bearer`, an HTTP bearer scheme (`bearerFormat: JWT`);
- `dev`: `devUser` and `devRoles`, `apiKey` schemes in the `X-Dev-User` and `X-Dev-Roles`
  headers. FastAPI lists one security requirement per scheme, and OpenAPI reads a list of
  requirements as alternatives: the document says `X-Dev-User` or `X-Dev-Roles`, while the
  server needs `X-Dev-User` (with `X-Dev-Roles` beside it, or no roles). The schemes'
  descriptions say so.

Every scheme is built with `auto_error=False`, so FastAPI's own refusal ("Not authenticated")
never answers: the dependency answers the shared 401 problem with its own challenge. Operations
that do not depend on `principal` declare no security (`/healthz`, `/readyz`, `/metrics`); one
that takes credentials or something else (the calendar feed: its secret token) can say so with
`openapi_extra={"security": auth.security_requirements(optional=True)}`.

No `from __future__ import annotations` here: FastAPI must evaluate the `Annotated[...,
Depends(local)]` hints of the nested functions, which string annotations would hide.
"""

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from crm_platform.auth.jwks import JwksCache, JwksUnavailable
from crm_platform.auth.principal import (
    MissingIdentity,
    Principal,
    Role,
    normalize_user_id,
    parse_roles,
    principal_from_claims,
)
from crm_platform.auth.settings import AuthMode, AuthSettings, check_auth_mode
from crm_platform.auth.tokens import InvalidToken, TokenValidator
from crm_platform.http.errors import ApiError, Forbidden, Unauthenticated

log = logging.getLogger(__name__)

__all__ = [
    "BEARER_SCHEME",
    "DEV_CHALLENGE",
    "DEV_ROLES_SCHEME",
    "DEV_USER_SCHEME",
    "Authenticator",
    "PrincipalDependency",
    "SecurityRequirement",
]

PrincipalDependency = Callable[..., Principal | Awaitable[Principal]]
BearerResolver = Callable[[Request, HTTPAuthorizationCredentials | None], Principal]
SecurityRequirement = dict[str, list[str]]
"""One OpenAPI security requirement object: scheme name → scopes (none here)."""

# The security schemes' names in `components.securitySchemes`.
BEARER_SCHEME = "bearer"
DEV_USER_SCHEME = "devUser"
DEV_ROLES_SCHEME = "devRoles"

# RFC 6750: no error code when no credentials were sent, `invalid_token` when they were bad.
_CHALLENGE_NO_CREDENTIALS = "Bearer"
_CHALLENGE_REFUSED = 'Bearer error="invalid_token"'
# Dev mode does not speak Bearer; the challenge names the header it wants instead.
DEV_CHALLENGE = "X-Dev-User"


class Authenticator:
    """Builds the `principal` dependency for the configured mode.

    Construction runs `check_auth_mode`, so an app cannot get a dev-mode authenticator
    while production settings are present. `jwks` is for tests (a fixed clock, say).
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        production_settings_present: bool,
        jwks: JwksCache | None = None,
    ) -> None:
        check_auth_mode(settings, production_settings_present)
        self.settings = settings
        self.principal: PrincipalDependency
        self._resolve_bearer: BearerResolver
        if settings.mode is AuthMode.DEV:
            self._dev = _dev_principal_dependency()
            self.principal = self._dev
        else:
            validator = TokenValidator(settings, jwks or JwksCache.from_settings(settings))
            self.principal, self._resolve_bearer = _jwt_principal_dependency(settings, validator)

    def authenticate(self, request: Request) -> Principal:
        """The caller as the `principal` dependency would see them, for a route that must
        also answer without credentials and so resolves the caller itself (blocking: call
        it from a plain `def` route)."""
        if self.settings.mode is AuthMode.DEV:
            return self._dev(
                request,
                x_dev_user=request.headers.get("X-Dev-User"),
                x_dev_roles=request.headers.get("X-Dev-Roles"),
            )
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        credentials = (
            HTTPAuthorizationCredentials(scheme=scheme, credentials=value.strip())
            if scheme.lower() == "bearer" and value.strip()
            else None
        )
        return self._resolve_bearer(request, credentials)

    def security_requirements(self, *, optional: bool = False) -> list[SecurityRequirement]:
        """The `security` of an operation that depends on `principal`, as FastAPI writes it.

        `optional=True` puts the empty requirement `{}` first: for an operation that also
        answers without credentials (the calendar feed read with its secret token), as
        `openapi_extra={"security": auth.security_requirements(optional=True)}`. The schemes
        it names are declared by any operation of the app that depends on `principal`.
        """
        required: list[SecurityRequirement]
        if self.settings.mode is AuthMode.DEV:
            required = [{DEV_USER_SCHEME: []}, {DEV_ROLES_SCHEME: []}]
        else:
            required = [{BEARER_SCHEME: []}]
        return [{}, *required] if optional else required

    def require_roles(self, *roles: Role) -> PrincipalDependency:
        """A dependency that lets the caller through when they hold ANY of `roles`."""
        if not roles:
            raise ValueError("require_roles needs at least one role")
        wanted = frozenset(roles)
        principal_dependency = self.principal

        def require(principal: Annotated[Principal, Depends(principal_dependency)]) -> Principal:
            if principal.roles.isdisjoint(wanted):
                log.info(
                    "forbidden: %s lacks any of the roles %s",
                    principal.user_id,
                    sorted(wanted),
                )
                raise Forbidden()
            return principal

        return require


def _jwt_principal_dependency(
    settings: AuthSettings, validator: TokenValidator
) -> tuple[PrincipalDependency, BearerResolver]:
    bearer = HTTPBearer(
        auto_error=False,
        scheme_name=BEARER_SCHEME,
        bearerFormat="JWT",
        description="An OAuth 2.0 access token (JWT) issued by Microsoft Entra ID.",
    )

    def resolve(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
        if credentials is None:
            log.info("unauthenticated: no bearer token on %s", request.url.path)
            raise Unauthenticated(_CHALLENGE_NO_CREDENTIALS)
        try:
            claims = validator.verified(credentials.credentials) or validator.validate(
                credentials.credentials
            )
            caller = principal_from_claims(claims, settings)
        except (InvalidToken, MissingIdentity) as error:
            log.info("unauthenticated: bearer token refused: %s", error)
            raise Unauthenticated(_CHALLENGE_REFUSED) from None
        except JwksUnavailable as error:
            log.warning("cannot authenticate: %s", error)
            raise ApiError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "auth_unavailable",
                "Credentials cannot be checked right now; try again shortly.",
                headers={"Retry-After": "5"},
            ) from None
        request.state.principal = caller
        return caller

    # On the event loop when the token was verified recently (no I/O, no thread hand-over,
    # which cost as much as the check); otherwise in the thread pool, where a JWKS fetch
    # may block.
    async def principal(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is not None and validator.verified(credentials.credentials) is not None:
            return resolve(request, credentials)
        return await run_in_threadpool(resolve, request, credentials)

    return principal, resolve


def _dev_principal_dependency() -> Callable[..., Principal]:
    # `auto_error=False`: a missing header is this dependency's 401 problem, not FastAPI's.
    dev_user = APIKeyHeader(
        name="X-Dev-User",
        scheme_name=DEV_USER_SCHEME,
        auto_error=False,
        description=(
            "Dev mode only (AUTH_MODE=dev): the caller's user id, their mailbox address, e.g. "
            "consultant@example.com. Required: without it the answer is 401. Send X-Dev-Roles "
            "(scheme devRoles) beside it."
        ),
    )
    dev_roles = APIKeyHeader(
        name="X-Dev-Roles",
        scheme_name=DEV_ROLES_SCHEME,
        auto_error=False,
        description=(
            "Dev mode only (AUTH_MODE=dev): the caller's roles, comma-separated "
            f"({', '.join(role.value for role in Role)}); unknown ones are ignored, none "
            "means no role. Counts only together with X-Dev-User (scheme devUser): alone it "
            "authenticates no one."
        ),
    )

    # The parameters' names are part of the interface: calendar-sync's feed calls this
    # function itself with `x_dev_user=` and `x_dev_roles=`.
    def principal(
        request: Request,
        x_dev_user: Annotated[str | None, Depends(dev_user)],
        x_dev_roles: Annotated[str | None, Depends(dev_roles)],
    ) -> Principal:
        # Refused rather than ignored: a client that sends a real token to a dev-mode service
        # is misconfigured, and must not silently run as whoever X-Dev-User names.
        if request.headers.get("authorization"):
            log.info("unauthenticated: Authorization header sent to a dev-mode service")
            raise Unauthenticated(DEV_CHALLENGE)
        if x_dev_user is None or not x_dev_user.strip():
            log.info("unauthenticated: no X-Dev-User header on %s", request.url.path)
            raise Unauthenticated(DEV_CHALLENGE)
        user_id = normalize_user_id(x_dev_user)
        caller = Principal(
            user_id=user_id,
            display_name=user_id,
            roles=parse_roles((x_dev_roles or "").split(",")),
        )
        request.state.principal = caller
        return caller

    return principal
