"""App-only tokens for Microsoft Graph, behind a small interface of our own.

Two implementations of `TokenProvider`:

* `MsalTokenProvider`: **production**. MSAL's `ConfidentialClientApplication` against
  `https://login.microsoftonline.com/{tenant}`. MSAL fetches the tenant's OpenID configuration in
  its constructor and accepts only https authorities, so it is built lazily, on the first token
  request, never at import or wiring time.
* `ClientCredentialsTokenProvider`: **tests and local runs** against the Graph fake
  (tests/fakes/graph_fake.py), whose token endpoint is plain http on 127.0.0.1. It posts the same
  client-credentials form MSAL posts, with httpx, and caches the token until 60 s before expiry.

Both are thread-safe, and both let the Graph client `invalidate()` a token Graph refused (401).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
REFRESH_MARGIN_S = 60.0  # renew a minute early: a token must not expire while a request is out


class TokenError(Exception):
    """No token could be had (wrong credentials, unknown tenant, endpoint unreachable)."""


class TokenProvider(Protocol):
    def token(self) -> str:
        """A bearer token for Graph, from the cache while it is fresh."""
        ...

    def invalidate(self) -> None:
        """Forget the cached token (Graph answered 401 with it)."""
        ...


class ClientCredentialsTokenProvider:
    """OAuth 2.0 client credentials over httpx, cached until `expires_in` − 60 s."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str = GRAPH_SCOPE,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
    ) -> None:
        self._url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }
        self._http = http or httpx.Client(timeout=timeout)
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[str, float] | None = None  # (token, monotonic renew-at)

    def token(self) -> str:
        # One lock around fetch-and-store: many threads asking at once cause one request.
        with self._lock:
            if self._cached is not None and self._clock() < self._cached[1]:
                return self._cached[0]
            try:
                response = self._http.post(self._url, data=self._form)
            except httpx.HTTPError as exc:
                raise TokenError(f"token endpoint unreachable: {exc!r}") from exc
            body = _json(response)
            if response.status_code != 200 or "access_token" not in body:
                raise TokenError(
                    f"token request refused ({response.status_code}): "
                    f"{body.get('error')}: {body.get('error_description')}"
                )
            lifetime = float(body.get("expires_in", 0))
            self._cached = (
                str(body["access_token"]),
                self._clock() + max(lifetime - REFRESH_MARGIN_S, 0.0),
            )
            return self._cached[0]

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None


class MsalTokenProvider:
    """MSAL confidential client (production). MSAL keeps its own in-memory token cache and
    renews ahead of expiry; `acquire_token_for_client` looks there first."""

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        scope: str = GRAPH_SCOPE,
    ) -> None:
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._lock = threading.Lock()
        self._app: Any = None  # msal.ConfidentialClientApplication, built on first use

    def _application(self) -> Any:
        if self._app is None:
            import msal  # imported here: only production needs it, and it is slow to import

            self._app = msal.ConfidentialClientApplication(
                self._client_id,
                client_credential=self._client_secret,
                authority=self._authority,
            )
        return self._app

    def token(self) -> str:
        with self._lock:
            try:
                result = self._application().acquire_token_for_client(scopes=[self._scope])
            except Exception as exc:  # msal raises plain ValueError/requests errors
                raise TokenError(f"MSAL could not reach the authority: {exc!r}") from exc
            if not isinstance(result, dict) or "access_token" not in result:
                detail = result if isinstance(result, dict) else {}
                raise TokenError(
                    f"MSAL token request refused: {detail.get('error')}: "
                    f"{detail.get('error_description')}"
                )
            return str(result["access_token"])

    def invalidate(self) -> None:
        # MSAL has no per-token eviction; a fresh application starts with an empty cache.
        with self._lock:
            self._app = None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
