"""Bearer JWT validation: algorithm allow-list, signature by kid, issuer, audience, time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from crm_platform.auth.jwks import JwksCache
from crm_platform.auth.settings import AuthSettings

__all__ = ["MAX_TOKEN_CHARS", "InvalidToken", "TokenValidator"]

# Entra tokens stay well below this even with many claims; anything longer is not one.
MAX_TOKEN_CHARS = 16_384
# A token verified once is believed again for this long at most (never past its `exp`):
# a client sends the same token with every request for its lifetime (an hour at Entra), and
# an RS256 verification cost a fifth of the command path's server CPU. Bounded so a key
# withdrawn from the JWKS stops being honoured soon.
VERIFIED_FOR_S = 300.0
VERIFIED_MAX = 10_000


class InvalidToken(Exception):
    """The token is not acceptable. The message is for the server log, never the client."""


class TokenValidator:
    """Validates a compact JWS and returns its claims."""

    def __init__(
        self,
        settings: AuthSettings,
        jwks: JwksCache,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not (settings.issuer and settings.audience):
            raise ValueError("TokenValidator needs AuthSettings.issuer and .audience")
        self._issuer = settings.issuer
        self._audience = list(settings.audience)
        self._algorithms = frozenset(settings.algorithms)
        self._leeway = settings.leeway_seconds
        self._jwks = jwks
        self._now = wall_clock
        # token → (claims, believed until, the key that verified it)
        self._verified: dict[str, tuple[dict[str, Any], float, PyJWK]] = {}
        self._verified_lock = threading.Lock()

    def verified(self, token: str) -> dict[str, Any] | None:
        """The claims of a token validated recently, not expired since and verified by a key
        the issuer still publishes, or None: then call `validate`. Costs no signature check
        and no I/O."""
        entry = self._verified.get(token)
        if entry is None:
            return None
        claims, until, key = entry
        if self._now() >= until or self._jwks.current(key.key_id or "") is not key:
            with self._verified_lock:
                self._verified.pop(token, None)
            return None
        return claims

    def validate(self, token: str) -> dict[str, Any]:
        """Claims of a valid token; raises `InvalidToken`, or `JwksUnavailable` from the cache."""
        claims, key = self._validate(token)
        until = min(float(claims["exp"]), self._now() + VERIFIED_FOR_S)
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_MAX:
                # Oldest first (dicts keep insertion order): the longest-lived entries go.
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = (claims, until, key)
        return claims

    def _validate(self, token: str) -> tuple[dict[str, Any], PyJWK]:
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
        return claims, key
