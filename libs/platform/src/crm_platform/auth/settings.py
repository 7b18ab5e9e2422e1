"""Auth settings (env prefix `AUTH_`) and the start-up check of the auth mode.

Services build `AuthSettings()` in their entry point and pass it down; nothing here reads
the environment at import time.
"""

from __future__ import annotations

import ipaddress
import logging
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)

__all__ = [
    "ALLOWED_ALGORITHMS",
    "AuthMode",
    "AuthSettings",
    "ConfigurationError",
    "check_auth_mode",
]

# Asymmetric only: with a symmetric algorithm anyone holding the (public) key could sign.
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)


class ConfigurationError(RuntimeError):
    """The settings cannot run safely; raised while the app is being built."""


class AuthMode(StrEnum):
    JWT = "jwt"
    DEV = "dev"


def _split(value: Any) -> Any:
    """Env values arrive as `a,b`; code may pass a string or a sequence."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class AuthSettings(BaseSettings):
    """How callers are authenticated. See the field descriptions for the env names."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", frozen=True)

    mode: AuthMode = Field(
        default=AuthMode.JWT, description="AUTH_MODE: `jwt` (default) or `dev` (trusted headers)."
    )
    issuer: str | None = Field(
        default=None,
        description="AUTH_ISSUER, e.g. https://login.microsoftonline.com/<tenant>/v2.0",
    )
    audience: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="AUTH_AUDIENCE: accepted `aud` values, comma-separated."
    )
    jwks_url: str | None = Field(
        default=None,
        description="AUTH_JWKS_URL, e.g. https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys",
    )
    algorithms: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("RS256", "ES256"), description="AUTH_ALGORITHMS: allow-list, comma-separated."
    )
    leeway_seconds: int = Field(
        default=60, ge=0, le=600, description="AUTH_LEEWAY_SECONDS: clock skew for exp/nbf."
    )
    user_claim: str = Field(default="preferred_username", description="AUTH_USER_CLAIM")
    fallback_user_claim: str = Field(default="upn", description="AUTH_FALLBACK_USER_CLAIM")
    service_id_claim: str = Field(
        default="azp",
        description=(
            "AUTH_SERVICE_ID_CLAIM: the caller id of app-only tokens (role `service`), which "
            "carry no user claim; `azp` for Entra v2 tokens, `appid` for v1."
        ),
    )
    name_claim: str = Field(default="name", description="AUTH_NAME_CLAIM")
    roles_claim: str = Field(default="roles", description="AUTH_ROLES_CLAIM")
    jwks_cache_seconds: int = Field(
        default=3600, ge=0, description="AUTH_JWKS_CACHE_SECONDS: how long a fetched JWKS is used."
    )
    jwks_min_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description="AUTH_JWKS_MIN_REFRESH_SECONDS: least time between refreshes on unknown kids.",
    )
    jwks_timeout_seconds: float = Field(
        default=5.0, gt=0, description="AUTH_JWKS_TIMEOUT_SECONDS: HTTP timeout of a JWKS fetch."
    )

    @field_validator("audience", mode="before")
    @classmethod
    def _split_audience(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        refused = [alg for alg in value if alg not in ALLOWED_ALGORITHMS]
        if refused:
            raise ValueError(
                f"algorithms {refused} are not allowed; choose from {sorted(ALLOWED_ALGORITHMS)}"
            )
        if not value:
            raise ValueError("at least one algorithm is required")
        return value


def check_auth_mode(settings: AuthSettings, production_settings_present: bool) -> None:
    """Refuse unsafe auth settings at app construction; warn loudly about dev mode.

    `production_settings_present`: whether the service has a PostgreSQL DSN or a Kafka
    bootstrap configured, i.e. whether it might be serving real data.
    """
    if settings.mode is AuthMode.DEV:
        if production_settings_present:
            raise ConfigurationError(
                "AUTH_MODE=dev trusts the X-Dev-User header and is refused because a production "
                "setting (a PostgreSQL DSN or a Kafka bootstrap) is configured; "
                "set AUTH_MODE=jwt with AUTH_ISSUER, AUTH_AUDIENCE and AUTH_JWKS_URL."
            )
        log.warning(
            "AUTH_MODE=dev: callers are named by the X-Dev-User and X-Dev-Roles headers and are "
            "NOT authenticated; use this only on a developer machine"
        )
        return
    missing = [
        f"AUTH_{name.upper()}"
        for name in ("issuer", "audience", "jwks_url")
        if not getattr(settings, name)
    ]
    if missing:
        raise ConfigurationError(
            f"AUTH_MODE=jwt needs {', '.join(missing)}; or set AUTH_MODE=dev on a developer machine"
        )
    assert settings.jwks_url is not None
    _check_jwks_url(settings.jwks_url)


def _check_jwks_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise ConfigurationError(
        f"AUTH_JWKS_URL must be an https URL (plain http only on loopback), got {url!r}"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
