"""Bearer JWT validation: algorithm allow-list, signature by kid, issuer, audience, time."""

from __future__ import annotations

from typing import Any

import jwt
from jwt.exceptions import PyJWTError

from crm_platform.auth.jwks import JwksCache
from crm_platform.auth.settings import AuthSettings

__all__ = ["MAX_TOKEN_CHARS", "InvalidToken", "TokenValidator"]

# Entra tokens stay well below this even with many claims; anything longer is not one.
MAX_TOKEN_CHARS = 16_384


class InvalidToken(Exception):
    """The token is not acceptable. The message is for the server log, never the client."""


class TokenValidator:
    """Validates a compact JWS and returns its claims."""

    def __init__(self, settings: AuthSettings, jwks: JwksCache) -> None:
        if not (settings.issuer and settings.audience):
            raise ValueError("TokenValidator needs AuthSettings.issuer and .audience")
        self._issuer = settings.issuer
        self._audience = list(settings.audience)
        self._algorithms = frozenset(settings.algorithms)
        self._leeway = settings.leeway_seconds
        self._jwks = jwks

    def validate(self, token: str) -> dict[str, Any]:
        """Claims of a valid token; raises `InvalidToken`, or `JwksUnavailable` from the cache."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken(f"token longer than {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError as error:
            raise InvalidToken(f"malformed token: {error}") from None
        # Checked before the key lookup, so `none` and HMAC tokens never reach a key at all.
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise InvalidToken(f"algorithm {alg!r} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token header has no kid")
        key = self._jwks.key_for(kid)
        if key is None:
            raise InvalidToken(f"no signing key with kid {kid!r}")
        # PyJWT checks this itself since 2.10; kept so an older PyJWT cannot verify an ES256
        # header with an RSA key's algorithm or vice versa.
        if key.algorithm_name != alg:
            raise InvalidToken(f"token alg {alg!r} does not match key alg {key.algorithm_name!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except PyJWTError as error:
            raise InvalidToken(f"{type(error).__name__}: {error}") from None
        return claims
