"""The three services' OpenAPI documents declare how to authenticate, and the servers demand it.

Each service is built as `make run` builds it (SQLite in a temporary directory, the in-process
transport, the iCalendar feed), once with a dev-mode and once with a JWT-mode `Authenticator`.
For every documented operation:

- one that depends on the caller declares the mode's security requirement (`bearer`, or
  `devUser`/`devRoles`), the schemes are in `components.securitySchemes`, and no credential is
  left as an ordinary header parameter;
- without credentials it answers the 401 `unauthenticated` problem with the mode's challenge
  before anything else is looked at (path, query, body);
- the operations that take no credentials (`/healthz`, `/readyz`, `/metrics`) declare no
  security, and the calendar feed (its secret token or credentials) at most an optional one;
- credentials sent the way the document says get past authentication ("Try it out").
"""

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from activity.service import ActivityService
from calendar_sync.service import CalendarSyncService
from calendar_sync.settings import CalendarSyncSettings
from crm_platform.auth import (
    BEARER_SCHEME,
    DEV_CHALLENGE,
    DEV_ROLES_SCHEME,
    DEV_USER_SCHEME,
    Authenticator,
    AuthMode,
    AuthSettings,
)
from crm_platform.settings import RuntimeSettings
from fastapi import FastAPI
from fastapi.testclient import TestClient
from segmentation.service import SegmentationService

from tests.integration.auth.support import AUDIENCE, ISSUER, JwksServer, Keys, claims

SERVICES = ("activity", "segmentation", "calendar-sync")
MODES = (AuthMode.DEV, AuthMode.JWT)
METHODS = ("get", "put", "post", "delete", "patch")
# Operations that take no credentials at all.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Read with its secret token (Outlook cannot send headers) or with credentials.
FEED_PATH = "/calendars/{owner}.ics"
CREDENTIAL_HEADERS = frozenset({"authorization", "x-dev-user", "x-dev-roles"})
NO_CREDENTIALS_CHALLENGE = {AuthMode.DEV: DEV_CHALLENGE, AuthMode.JWT: "Bearer"}
EXPECTED_SCHEMES: dict[AuthMode, dict[str, dict[str, Any]]] = {
    AuthMode.DEV: {
        DEV_USER_SCHEME: {"type": "apiKey", "in": "header", "name": "X-Dev-User"},
        DEV_ROLES_SCHEME: {"type": "apiKey", "in": "header", "name": "X-Dev-Roles"},
    },
    AuthMode.JWT: {BEARER_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
}
MANAGER = "mia@example.dk"


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    spec: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.service}: {self.method.upper()} {self.path}"


@dataclass
class Services:
    activity: ActivityService
    segmentation: SegmentationService
    calendar: CalendarSyncService

    def app(self, service: str, auth: Authenticator) -> FastAPI:
        built = {
            "activity": self.activity,
            "segmentation": self.segmentation,
            "calendar-sync": self.calendar,
        }[service]
        app: FastAPI = built.api(auth)
        return app

    def close(self) -> None:
        for service in (self.calendar, self.segmentation, self.activity):
            service.close()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    data_dir: Path = tmp_path_factory.mktemp("auth-documents")
    # Only what is passed here: a developer's CRM_* environment must not leak in.
    settings = RuntimeSettings(
        _env_file=None, postgres_dsn=None, kafka_bootstrap=None, data_dir=data_dir
    )
    transport = settings.transport("embedded")
    built = Services(
        ActivityService.build(settings, transport),
        SegmentationService.build(settings, transport),
        CalendarSyncService.build(settings, transport, CalendarSyncSettings(_env_file=None)),
    )
    yield built
    built.close()


@pytest.fixture(scope="module")
def module_keys() -> Keys:
    return Keys.generate()


@pytest.fixture(scope="module")
def module_jwks(module_keys: Keys) -> Iterator[JwksServer]:
    server = JwksServer().start()
    server.publish(module_keys.rsa)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def manager_token(module_keys: Keys) -> str:
    return module_keys.rsa.sign(claims(preferred_username=MANAGER, roles=["sales_manager"]))


@pytest.fixture(scope="module")
def authenticators(module_jwks: JwksServer) -> dict[AuthMode, Authenticator]:
    jwt_settings = AuthSettings(
        mode=AuthMode.JWT, issuer=ISSUER, audience=AUDIENCE, jwks_url=module_jwks.url
    )
    return {
        AuthMode.DEV: Authenticator(
            AuthSettings(mode=AuthMode.DEV), production_settings_present=False
        ),
        AuthMode.JWT: Authenticator(jwt_settings, production_settings_present=True),
    }


@pytest.fixture(scope="module")
def apps(
    services: Services, authenticators: dict[AuthMode, Authenticator]
) -> dict[tuple[str, AuthMode], FastAPI]:
    return {
        (service, mode): services.app(service, authenticators[mode])
        for service in SERVICES
        for mode in MODES
    }


def operations(document: dict[str, Any], service: str) -> list[Operation]:
    return [
        Operation(service, method, path, spec)
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if method in METHODS
    ]


def needs_credentials(operation: Operation) -> bool:
    return operation.path not in OPEN_PATHS and operation.path != FEED_PATH


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("service", SERVICES)
def test_the_document_declares_the_modes_schemes(
    apps: dict[tuple[str, AuthMode], FastAPI], service: str, mode: AuthMode
) -> None:
    document = apps[service, mode].openapi()

    schemes = document["components"]["securitySchemes"]
    assert {name: _without_description(s) for name, s in schemes.items()} == (
        EXPECTED_SCHEMES[mode]
    )
    assert all(scheme.get("description") for scheme in schemes.values())
    assert "security" not in document  # declared per operation, never for the open ones


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_states_its_security_honestly(
    apps: dict[tuple[str, AuthMode], FastAPI],
    authenticators: dict[AuthMode, Authenticator],
    service: str,
    mode: AuthMode,
) -> None:
    document = apps[service, mode].openapi()
    required = authenticators[mode].security_requirements()
    declared = set(document["components"]["securitySchemes"])
    ops = operations(document, service)
    assert len(ops) > 3

    for operation in ops:
        security = operation.spec.get("security")
        credential_parameters = [
            p["name"]
            for p in operation.spec.get("parameters", [])
            if p["in"] == "header" and p["name"].lower() in CREDENTIAL_HEADERS
        ]
        assert credential_parameters == [], f"{operation}: {credential_parameters}"
        if operation.path in OPEN_PATHS:
            assert security is None, f"{operation} takes no credentials: {security}"
        elif operation.path == FEED_PATH:
            # A token in the URL or credentials: nothing, or an optional requirement.
            assert security is None or security == [{}, *required], f"{operation}: {security}"
        else:
            assert security == required, f"{operation}: {security}"
        for requirement in security or ():
            assert set(requirement) <= declared, f"{operation}: {requirement}"


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("service", SERVICES)
def test_without_credentials_every_secured_operation_is_401(
    apps: dict[tuple[str, AuthMode], FastAPI], service: str, mode: AuthMode
) -> None:
    app = apps[service, mode]
    secured = [op for op in operations(app.openapi(), service) if needs_credentials(op)]

    with TestClient(app) as client:
        for operation in secured:
            response = client.request(
                operation.method.upper(), _path(operation), **_body(operation)
            )
            assert response.status_code == 401, f"{operation}: {response.text}"
            assert response.json()["code"] == "unauthenticated", operation
            assert response.headers["WWW-Authenticate"] == NO_CREDENTIALS_CHALLENGE[mode]


@pytest.mark.parametrize("service", SERVICES)
def test_the_open_operations_need_no_credentials(
    apps: dict[tuple[str, AuthMode], FastAPI], service: str
) -> None:
    with TestClient(apps[service, AuthMode.JWT]) as client:
        for path in ("/healthz", "/metrics"):
            assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_the_feed_takes_credentials_or_its_token_so_neither_is_required(
    apps: dict[tuple[str, AuthMode], FastAPI], manager_token: str, mode: AuthMode
) -> None:
    app = apps["calendar-sync", mode]
    feed = f"/calendars/{MANAGER}.ics"
    credentials = _credentials(app, manager_token)

    with TestClient(app) as client:
        refused = client.get(feed)
        rotated = client.post(f"/calendars/{MANAGER}/token", headers=credentials)
        with_credentials = client.get(feed, headers=credentials)
        token = rotated.json()["url"].rpartition("token=")[2]
        with_token = client.get(feed, params={"token": token})

    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == NO_CREDENTIALS_CHALLENGE[mode]
    assert rotated.status_code == 200, rotated.text
    assert with_credentials.status_code == 200, with_credentials.text
    assert with_token.status_code == 200, with_token.text


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("service", SERVICES)
def test_credentials_sent_as_the_document_says_are_accepted(
    apps: dict[tuple[str, AuthMode], FastAPI], manager_token: str, service: str, mode: AuthMode
) -> None:
    """What Swagger's "Try it out" sends after "Authorize"."""
    app = apps[service, mode]

    with TestClient(app) as client:
        response = client.get(_a_list_to_read(service), headers=_credentials(app, manager_token))

    assert response.status_code == 200, response.text


def _credentials(app: FastAPI, token: str) -> dict[str, str]:
    """A manager's credentials as Swagger's "Authorize" sends them: where each scheme says."""
    values = {
        DEV_USER_SCHEME: MANAGER,
        DEV_ROLES_SCHEME: "sales_manager",
        BEARER_SCHEME: f"Bearer {token}",
    }
    headers = {}
    for name, scheme in app.openapi()["components"]["securitySchemes"].items():
        header = "Authorization" if scheme["type"] == "http" else scheme["name"]
        headers[header] = values[name]
    return headers


def _a_list_to_read(service: str) -> str:
    return {
        "activity": "/activities",
        "segmentation": "/segmentation/policy",
        "calendar-sync": "/ops/parked",
    }[service]


def _path(operation: Operation) -> str:
    """The path with every parameter filled in with a value its pattern would take."""
    formats = {
        p["name"]: p.get("schema", {}).get("format")
        for p in operation.spec.get("parameters", [])
        if p["in"] == "path"
    }

    def value(match: re.Match[str]) -> str:
        return str(uuid.UUID(int=1)) if formats.get(match[1]) == "uuid" else "anna@example.dk"

    return re.sub(r"\{([^}]+)\}", value, operation.path)


def _body(operation: Operation) -> dict[str, Any]:
    content = operation.spec.get("requestBody", {}).get("content", {})
    if not content:
        return {}
    media_type = next(iter(content))
    payload = b"{}" if "json" in media_type else b"customer_id\n"
    return {"content": payload, "headers": {"content-type": media_type}}


def _without_description(scheme: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in scheme.items() if key != "description"}
