"""AuthSettings from the environment, and the start-up check of the auth mode."""

from __future__ import annotations

import logging
import os

import pytest
from crm_platform.auth import (
    Authenticator,
    AuthMode,
    AuthSettings,
    ConfigurationError,
    check_auth_mode,
)
from pydantic import ValidationError

JWT = {"issuer": "https://issuer/v2.0", "audience": "api://crm", "jwks_url": "https://issuer/keys"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AUTH_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = AuthSettings()

    assert settings.mode is AuthMode.JWT
    assert settings.algorithms == ("RS256", "ES256")
    assert settings.leeway_seconds == 60
    assert (settings.user_claim, settings.fallback_user_claim) == ("preferred_username", "upn")
    assert (settings.name_claim, settings.roles_claim) == ("name", "roles")


def test_settings_are_read_with_the_auth_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "dev")
    monkeypatch.setenv("AUTH_AUDIENCE", "api://crm, 11111111-2222")
    monkeypatch.setenv("AUTH_ALGORITHMS", "RS256")
    monkeypatch.setenv("AUTH_LEEWAY_SECONDS", "30")
    monkeypatch.setenv("AUTH_JWKS_CACHE_SECONDS", "600")

    settings = AuthSettings()

    assert settings.mode is AuthMode.DEV
    assert settings.audience == ("api://crm", "11111111-2222")
    assert settings.algorithms == ("RS256",)
    assert settings.leeway_seconds == 30
    assert settings.jwks_cache_seconds == 600


@pytest.mark.parametrize("algorithms", ["HS256", "none", "RS256,HS512", ""])
def test_symmetric_and_none_algorithms_are_refused(algorithms: str) -> None:
    with pytest.raises(ValidationError, match="algorithm"):
        AuthSettings(algorithms=algorithms)


def test_dev_mode_with_production_settings_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="AUTH_MODE=dev"):
        check_auth_mode(AuthSettings(mode=AuthMode.DEV), production_settings_present=True)


def test_the_authenticator_refuses_dev_mode_with_production_settings() -> None:
    with pytest.raises(ConfigurationError):
        Authenticator(AuthSettings(mode=AuthMode.DEV), production_settings_present=True)


def test_dev_mode_alone_is_allowed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="crm_platform.auth"):
        check_auth_mode(AuthSettings(mode=AuthMode.DEV), production_settings_present=False)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "AUTH_MODE=dev" in warnings[0].getMessage()


def test_jwt_mode_needs_issuer_audience_and_jwks_url() -> None:
    with pytest.raises(ConfigurationError, match="AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_URL"):
        check_auth_mode(AuthSettings(), production_settings_present=False)


def test_jwt_mode_complete_is_accepted_silently(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_auth_mode(AuthSettings(**JWT), production_settings_present=True)
    assert caplog.records == []


@pytest.mark.parametrize(
    "url", ["http://login.example.com/keys", "ftp://issuer/keys", "https:///keys", "keys"]
)
def test_the_jwks_url_must_be_https(url: str) -> None:
    with pytest.raises(ConfigurationError, match="AUTH_JWKS_URL"):
        check_auth_mode(AuthSettings(**{**JWT, "jwks_url": url}), production_settings_present=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/keys", "http://localhost/keys"])
def test_plain_http_is_allowed_on_loopback(url: str) -> None:
    check_auth_mode(AuthSettings(**{**JWT, "jwks_url": url}), production_settings_present=False)
