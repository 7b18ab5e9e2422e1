"""The issuer's signing keys (JWKS): fetched over HTTP, cached, refreshed sparingly.

PyJWT's `PyJWKClient` refreshes on every unknown `kid`, so a flood of tokens with made-up
kids would become a flood of requests to the issuer. This small cache keeps PyJWT's key
parsing (`PyJWKSet`) but rate-limits those refreshes, and keeps serving the last good set
when a refresh fails.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import httpx
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWTError

from crm_platform.auth.settings import AuthSettings

log = logging.getLogger(__name__)

__all__ = ["Fetch", "JwksCache", "JwksUnavailable", "http_fetch"]

Fetch = Callable[[str, float], Any]
"""Fetch the JSON document at a URL within a timeout (seconds)."""


class JwksUnavailable(Exception):
    """No signing keys are known and the issuer's JWKS could not be fetched."""


def http_fetch(url: str, timeout: float) -> Any:
    # No redirects: the JWKS URL is configured exactly; a redirect elsewhere is suspicious.
    response = httpx.get(url, timeout=timeout, follow_redirects=False)
    response.raise_for_status()
    return response.json()


class JwksCache:
    """Thread-safe cache of the signing keys by `kid`.

    - The set is fetched on first use and again when `cache_seconds` have passed.
    - An unknown kid triggers a refresh only when the last fetch is `min_refresh_seconds` old,
      so made-up kids cost the issuer at most one request per interval. (Entra publishes a
      new key well before signing with it, so a recent set already holds it.)
    - After a failed fetch no other fetch is tried for `failure_backoff_seconds`; meanwhile the
      last good set is used, or `JwksUnavailable` is raised when there is none.
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: Collection[str],
        cache_seconds: float = 3600.0,
        min_refresh_seconds: float = 30.0,
        failure_backoff_seconds: float = 5.0,
        timeout_seconds: float = 5.0,
        fetch: Fetch = http_fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._algorithms = frozenset(algorithms)
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._failure_backoff_seconds = failure_backoff_seconds
        self._timeout_seconds = timeout_seconds
        self._fetch = fetch
        self._clock = clock
        # One fetch at a time: concurrent requests wait for it instead of fetching too.
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] | None = None
        self._fresh_until = 0.0
        self._last_attempt: float | None = None
        self._retry_after = 0.0

    @classmethod
    def from_settings(
        cls,
        settings: AuthSettings,
        *,
        fetch: Fetch = http_fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> JwksCache:
        if settings.jwks_url is None:
            raise ValueError("AuthSettings.jwks_url is not set")
        return cls(
            settings.jwks_url,
            algorithms=settings.algorithms,
            cache_seconds=settings.jwks_cache_seconds,
            min_refresh_seconds=settings.jwks_min_refresh_seconds,
            timeout_seconds=settings.jwks_timeout_seconds,
            fetch=fetch,
            clock=clock,
        )

    def key_for(self, kid: str) -> PyJWK | None:
        """The signing key with this kid, or None when the issuer does not publish it."""
        with self._lock:
            now = self._clock()
            if self._keys is None or now >= self._fresh_until:
                self._refresh(now)
            keys = self._require_keys()
            key = keys.get(kid)
            if key is None and self._may_refresh_for_unknown_kid(now):
                log.info("unknown JWKS kid %r: refreshing the key set", kid)
                self._refresh(now)
                key = self._require_keys().get(kid)
            return key

    def current(self, kid: str) -> PyJWK | None:
        """The key with this kid in the set held now, if that set is still fresh; never
        fetches or waits. A key dropped by a refresh, or a set due for one, gives None."""
        keys = self._keys
        if keys is None or self._clock() >= self._fresh_until:
            return None
        return keys.get(kid)

    def _may_refresh_for_unknown_kid(self, now: float) -> bool:
        last = self._last_attempt
        return last is None or now - last >= self._min_refresh_seconds

    def _require_keys(self) -> dict[str, PyJWK]:
        if self._keys is None:
            raise JwksUnavailable(f"no signing keys could be fetched from {self._url}")
        return self._keys

    def _refresh(self, now: float) -> None:
        if now < self._retry_after:
            return
        self._last_attempt = now
        try:
            keys = self._load()
        except (httpx.HTTPError, ValueError, PyJWTError) as error:
            self._retry_after = now + self._failure_backoff_seconds
            if self._keys is not None:
                # Keep the stale set, and look again once the back-off has passed.
                self._fresh_until = self._retry_after
            log.warning("JWKS fetch from %s failed: %s", self._url, error)
            return
        self._keys = keys
        self._fresh_until = now + self._cache_seconds

    def _load(self) -> dict[str, PyJWK]:
        document = self._fetch(self._url, self._timeout_seconds)
        if not isinstance(document, Mapping):
            raise ValueError("the JWKS document is not a JSON object")
        keys: dict[str, PyJWK] = {}
        for key in PyJWKSet.from_dict(dict(document)):
            # Only signing keys of an allowed algorithm: an `oct` (HMAC) key must never verify.
            if key.key_id is None or key.public_key_use not in (None, "sig"):
                continue
            if key.algorithm_name in self._algorithms:
                keys[key.key_id] = key
        if not keys:
            raise ValueError("the JWKS holds no usable signing key for the allowed algorithms")
        return keys
