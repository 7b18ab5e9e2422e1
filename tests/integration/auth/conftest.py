from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from crm_platform.auth import Authenticator, AuthMode, AuthSettings, JwksCache, Principal, Role
from crm_platform.http import install_error_handlers
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from tests.integration.auth.support import AUDIENCE, ISSUER, FakeClock, JwksServer, Keys


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[JwksServer]:
    server = JwksServer().start()
    server.publish(keys.rsa, keys.ec)
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(jwks_server: JwksServer) -> AuthSettings:
    return AuthSettings(
        mode=AuthMode.JWT, issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url
    )


@pytest.fixture
def app(settings: AuthSettings, clock: FakeClock) -> FastAPI:
    auth = Authenticator(
        settings,
        production_settings_present=True,
        jwks=JwksCache.from_settings(settings, clock=clock),
    )
    return build_app(auth)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def build_app(auth: Authenticator) -> FastAPI:
    """The smallest app that shows what a service route sees."""
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
