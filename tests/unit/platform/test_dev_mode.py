"""Dev mode: the caller is named by X-Dev-User / X-Dev-Roles, apiKey schemes in the OpenAPI."""

# No `from __future__ import annotations`: the routes below use `Depends(<local>)` hints.

import logging
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from crm_platform.auth import Authenticator, AuthMode, AuthSettings, Principal, Role
from crm_platform.http import install_error_handlers
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient


def build_app() -> FastAPI:
    auth = Authenticator(AuthSettings(mode=AuthMode.DEV), production_settings_present=False)
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/me")
    def me(principal: Annotated[Principal, Depends(auth.principal)]) -> dict[str, Any]:
        return {
            "user_id": principal.user_id,
            "display_name": principal.display_name,
            "roles": sorted(principal.roles),
        }

    @app.get("/team")
    def team(
        principal: Annotated[Principal, Depends(auth.require_roles(Role.SALES_MANAGER))],
    ) -> dict[str, str]:
        return {"manager": principal.user_id}

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(build_app()) as client:
        yield client


def test_the_dev_headers_name_the_caller(client: TestClient) -> None:
    response = client.get(
        "/me",
        headers={"X-Dev-User": "Anna@Example.com", "X-Dev-Roles": "consultant, sales_manager,x"},
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "user_id": "anna@example.com",
        "display_name": "anna@example.com",
        "roles": ["consultant", "sales_manager"],
    }


def test_no_roles_header_means_no_roles(client: TestClient) -> None:
    response = client.get("/me", headers={"X-Dev-User": "anna@example.com"})

    assert response.status_code == 200
    assert response.json()["roles"] == []


@pytest.mark.parametrize("headers", [{}, {"X-Dev-User": "  "}, {"X-Dev-Roles": "sales_manager"}])
def test_without_a_user_it_is_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/me", headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == "X-Dev-User"


def test_a_bearer_token_is_refused_in_dev_mode(client: TestClient) -> None:
    response = client.get(
        "/me", headers={"X-Dev-User": "anna@example.com", "Authorization": "Bearer eyJ.x.y"}
    )

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_roles_are_enforced(client: TestClient) -> None:
    consultant = {"X-Dev-User": "anna@example.com", "X-Dev-Roles": "consultant"}
    manager = {"X-Dev-User": "bo@example.com", "X-Dev-Roles": "sales_manager"}

    refused = client.get("/team", headers=consultant)
    allowed = client.get("/team", headers=manager)

    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert allowed.status_code == 200
    assert allowed.json() == {"manager": "bo@example.com"}


@pytest.mark.parametrize("path", ["/me", "/team"])
def test_the_dev_headers_are_security_schemes_in_the_openapi_document(path: str) -> None:
    document = build_app().openapi()

    schemes = document["components"]["securitySchemes"]
    assert {name: (s["type"], s["in"], s["name"]) for name, s in schemes.items()} == {
        "devUser": ("apiKey", "header", "X-Dev-User"),
        "devRoles": ("apiKey", "header", "X-Dev-Roles"),
    }
    assert document["paths"][path]["get"]["security"] == [{"devUser": []}, {"devRoles": []}]
    assert "parameters" not in document["paths"][path]["get"]


def test_dev_mode_is_announced_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="crm_platform.auth"):
        build_app()

    assert any(
        r.levelno == logging.WARNING and "AUTH_MODE=dev" in r.message for r in caplog.records
    )


def test_require_roles_needs_a_role() -> None:
    auth = Authenticator(AuthSettings(mode=AuthMode.DEV), production_settings_present=False)

    with pytest.raises(ValueError, match="at least one role"):
        auth.require_roles()
