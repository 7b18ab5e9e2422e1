"""The security schemes an `Authenticator` puts in the OpenAPI document, per mode.

Every operation that depends on `principal` (or `require_roles`) declares the mode's
requirement; the schemes are FastAPI's (`HTTPBearer`, `APIKeyHeader`) with `auto_error=False`,
so the error answers stay the shared 401 problem with the mode's challenge.
"""

# No `from __future__ import annotations`: the routes below use `Depends(<local>)` hints.

from typing import Annotated, Any

import pytest
from crm_platform.auth import (
    BEARER_SCHEME,
    DEV_CHALLENGE,
    DEV_ROLES_SCHEME,
    DEV_USER_SCHEME,
    Authenticator,
    AuthMode,
    AuthSettings,
    Principal,
    Role,
)
from crm_platform.http import install_error_handlers
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

JWT_SETTINGS = AuthSettings(
    mode=AuthMode.JWT,
    issuer="https://login.microsoftonline.com/tenant/v2.0",
    audience=("api://crm",),
    # Never fetched here: no test sends a token.
    jwks_url="https://login.microsoftonline.com/tenant/discovery/v2.0/keys",
)


def authenticator(mode: AuthMode) -> Authenticator:
    if mode is AuthMode.DEV:
        return Authenticator(AuthSettings(mode=AuthMode.DEV), production_settings_present=False)
    return Authenticator(JWT_SETTINGS, production_settings_present=True)


def build_app(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/me")
    def me(principal: Annotated[Principal, Depends(auth.principal)]) -> dict[str, Any]:
        return {"user_id": principal.user_id, "roles": sorted(principal.roles)}

    @app.get("/team")
    def team(
        principal: Annotated[Principal, Depends(auth.require_roles(Role.SALES_MANAGER))],
    ) -> dict[str, str]:
        return {"manager": principal.user_id}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # Like the calendar feed: a secret token or credentials, checked inside the route.
    @app.get("/feed", openapi_extra={"security": auth.security_requirements(optional=True)})
    def feed() -> dict[str, str]:
        return {}

    return app


def test_dev_mode_declares_the_two_headers_as_api_key_schemes() -> None:
    document = build_app(authenticator(AuthMode.DEV)).openapi()

    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {DEV_USER_SCHEME, DEV_ROLES_SCHEME}
    assert {k: v for k, v in schemes[DEV_USER_SCHEME].items() if k != "description"} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Dev-User",
    }
    assert {k: v for k, v in schemes[DEV_ROLES_SCHEME].items() if k != "description"} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Dev-Roles",
    }
    # What the descriptions must say, since OpenAPI reads the two requirements as either/or.
    assert "Required" in schemes[DEV_USER_SCHEME]["description"]
    assert "only together with X-Dev-User" in schemes[DEV_ROLES_SCHEME]["description"]


def test_jwt_mode_declares_a_bearer_jwt_scheme() -> None:
    document = build_app(authenticator(AuthMode.JWT)).openapi()

    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {BEARER_SCHEME}
    assert schemes[BEARER_SCHEME]["type"] == "http"
    assert schemes[BEARER_SCHEME]["scheme"] == "bearer"
    assert schemes[BEARER_SCHEME]["bearerFormat"] == "JWT"


@pytest.mark.parametrize("mode", list(AuthMode), ids=str)
def test_authenticated_operations_require_the_schemes_and_others_do_not(mode: AuthMode) -> None:
    auth = authenticator(mode)
    paths = build_app(auth).openapi()["paths"]
    required = auth.security_requirements()

    assert paths["/me"]["get"]["security"] == required
    assert paths["/team"]["get"]["security"] == required
    assert "security" not in paths["/healthz"]["get"]
    assert paths["/feed"]["get"]["security"] == [{}, *required]
    # The credentials are schemes now, not ordinary parameters of each operation.
    for path in ("/me", "/team"):
        assert "parameters" not in paths[path]["get"]


def test_the_requirements_name_the_modes_schemes() -> None:
    assert authenticator(AuthMode.DEV).security_requirements() == [
        {DEV_USER_SCHEME: []},
        {DEV_ROLES_SCHEME: []},
    ]
    assert authenticator(AuthMode.JWT).security_requirements() == [{BEARER_SCHEME: []}]
    assert authenticator(AuthMode.JWT).security_requirements(optional=True) == [
        {},
        {BEARER_SCHEME: []},
    ]


@pytest.mark.parametrize(
    ("mode", "headers", "challenge"),
    [
        (AuthMode.DEV, {}, DEV_CHALLENGE),
        (AuthMode.DEV, {"X-Dev-User": ""}, DEV_CHALLENGE),
        (AuthMode.DEV, {"X-Dev-Roles": "sales_manager"}, DEV_CHALLENGE),
        (AuthMode.JWT, {}, "Bearer"),
        (AuthMode.JWT, {"Authorization": ""}, "Bearer"),
        (AuthMode.JWT, {"Authorization": "Basic YTpi"}, "Bearer"),
    ],
)
def test_missing_credentials_are_the_shared_401_not_fastapis(
    mode: AuthMode, headers: dict[str, str], challenge: str
) -> None:
    with TestClient(build_app(authenticator(mode))) as client:
        for path in ("/me", "/team"):
            response = client.get(path, headers=headers)

            assert response.status_code == 401, response.text
            assert response.headers["WWW-Authenticate"] == challenge
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "unauthenticated"


def test_a_dev_caller_without_the_role_is_403() -> None:
    with TestClient(build_app(authenticator(AuthMode.DEV))) as client:
        response = client.get("/team", headers={"X-Dev-User": "anna@example.com"})

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_the_dev_dependency_can_be_called_with_the_headers_by_name() -> None:
    """calendar-sync's feed resolves the caller inside its route, passing the headers by name."""
    auth = authenticator(AuthMode.DEV)
    request = Request({"type": "http", "method": "GET", "path": "/feed", "headers": []})

    caller = auth.principal(request, x_dev_user="Anna@Example.com", x_dev_roles="consultant")

    assert caller == Principal("anna@example.com", "anna@example.com", frozenset({Role.CONSULTANT}))
