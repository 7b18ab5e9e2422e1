"""FastAPI dependencies that authenticate the caller and check their roles.

One `Authenticator` per app, built in the app factory from `AuthSettings`. Its `principal`
dependency differs by mode, so the OpenAPI document shows how to call in that mode: the HTTP
bearer security scheme in `jwt` mode, the `X-Dev-User`/`X-Dev-Roles` header parameters in
`dev` mode (so Swagger's "Try it out" works in both).

No `from __future__ import annotations` here: FastAPI must evaluate the `Annotated[...,
Depends(local)]` hints of the nested functions, which string annotations would hide.
"""

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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

__all__ = ["DEV_CHALLENGE", "Authenticator", "PrincipalDependency"]

PrincipalDependency = Callable[..., Principal]

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
        if settings.mode is AuthMode.DEV:
            self.principal = _dev_principal_dependency()
        else:
            validator = TokenValidator(settings, jwks or JwksCache.from_settings(settings))
            self.principal = _jwt_principal_dependency(settings, validator)

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
) -> PrincipalDependency:
    bearer = HTTPBearer(
        auto_error=False,
        scheme_name="bearer",
        description="An OAuth 2.0 access token (JWT) issued by Microsoft Entra ID.",
    )

    # A plain `def`: FastAPI runs it in the thread pool, where a JWKS fetch may block.
    def principal(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            log.info("unauthenticated: no bearer token on %s", request.url.path)
            raise Unauthenticated(_CHALLENGE_NO_CREDENTIALS)
        try:
            claims = validator.validate(credentials.credentials)
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

    return principal


def _dev_principal_dependency() -> PrincipalDependency:
    def principal(
        request: Request,
        x_dev_user: Annotated[
            str | None,
            Header(
                alias="X-Dev-User",
                description="Dev mode only: the caller's user id (mailbox address).",
                examples=["consultant@example.com"],
            ),
        ] = None,
        x_dev_roles: Annotated[
            str | None,
            Header(
                alias="X-Dev-Roles",
                description=(
                    "Dev mode only: the caller's roles, comma-separated "
                    f"({', '.join(role.value for role in Role)}); unknown ones are ignored."
                ),
                examples=["consultant"],
            ),
        ] = None,
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
