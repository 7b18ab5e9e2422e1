"""The cockpit's settings: where the APIs are and how callers sign in (`CRM_WEB_*`)."""

from __future__ import annotations

import secrets
from enum import StrEnum

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SignIn(StrEnum):
    """How the cockpit learns who is calling, and what it sends the APIs on their behalf."""

    # Pick a user and role; the APIs get X-Dev-User/X-Dev-Roles (APIs in AUTH_MODE=dev).
    DEV = "dev"
    # Pick a user and role; a local token issuer (`make up`) signs a token the APIs accept.
    ISSUER = "issuer"
    # Production: an OIDC proxy in front passes the user's access token, forwarded as is.
    PROXY = "proxy"


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_WEB_", extra="ignore")

    sign_in: SignIn = SignIn.PROXY
    activity_url: str = "http://127.0.0.1:8001"
    segmentation_url: str = "http://127.0.0.1:8002"
    calendar_url: str = "http://127.0.0.1:8003"
    token_url: str | None = None  # SignIn.ISSUER: the issuer's POST /token
    # The header the OIDC proxy puts the access token in (oauth2-proxy's default); a bearer
    # Authorization header is taken too.
    proxy_token_header: str = "X-Forwarded-Access-Token"  # noqa: S105 (a header name)
    # Signs the session cookie of the dev and issuer sign-ins. A random one per process is
    # fine on one machine: a restart only asks people to sign in again.
    session_secret: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    cookie_secure: bool = False
    api_timeout_seconds: float = 15.0
    # Offered on the dev sign-in page (anyone may be typed in).
    dev_users: list[str] = [
        "anna@example.dk",
        "bo@example.dk",
        "mia@example.dk",
    ]

    @model_validator(mode="after")
    def _issuer_needs_a_token_url(self) -> WebSettings:
        if self.sign_in is SignIn.ISSUER and not self.token_url:
            raise ValueError("CRM_WEB_SIGN_IN=issuer needs CRM_WEB_TOKEN_URL")
        return self

    @property
    def picks_identity(self) -> bool:
        """The sign-in page exists: a person picks who they are (never in production)."""
        return self.sign_in is not SignIn.PROXY
