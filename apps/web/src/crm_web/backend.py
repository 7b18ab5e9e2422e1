"""The three services' public HTTP APIs, called with the caller's own credentials.

Nothing here knows a service's insides: paths, bodies and problems are what the OpenAPI
documents and docs/errors.md promise. Every answer that is not a success is an `ApiProblem`
carrying the RFC 9457 problem as the API sent it, for the pages to show in Danish.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from crm_web.identity import Caller
from crm_web.settings import WebSettings

Json = Any
Params = Mapping[str, str | int | None]
PROBLEM: Final = "application/problem+json"


@dataclass
class ApiProblem(Exception):
    """An API said no (or could not be reached): the problem document and its status."""

    status: int
    problem: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return str(self.problem.get("code") or "")

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.problem.get('detail', '')}"


class Backend:
    """One HTTP client (a connection pool) for the whole app; credentials per call."""

    def __init__(self, settings: WebSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.bases = {
            "activity": settings.activity_url.rstrip("/"),
            "segmentation": settings.segmentation_url.rstrip("/"),
            "calendar": settings.calendar_url.rstrip("/"),
        }
        self.client = client or httpx.AsyncClient(
            timeout=settings.api_timeout_seconds,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def close(self) -> None:
        await self.client.aclose()

    def as_(self, caller: Caller) -> Api:
        return Api(self, caller)


@dataclass
class Api:
    """The APIs as one caller: `await api.get("activity", "/activities", owner=...)`."""

    backend: Backend
    caller: Caller
    # The activity log's position after this caller's last command (its `Log-Position`):
    # reads that must show the command ask the API to wait for it (`min_position`).
    position: int | None = None

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Json = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        url = self.backend.bases[service] + path
        sent = {**self.caller.headers, **(headers or {})}
        query = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            response = await self.backend.client.request(
                method, url, params=query, json=json, content=content, headers=sent
            )
        except httpx.HTTPError as error:
            raise ApiProblem(
                503, {"code": "unreachable", "detail": f"{service}: {error.__class__.__name__}"}
            ) from error
        if response.status_code >= 400:
            raise ApiProblem(response.status_code, _problem(response))
        return response

    async def get(self, service: str, path: str, **params: str | int | None) -> Json:
        return (await self.request(service, "GET", path, params=params)).json()

    async def post(
        self,
        service: str,
        path: str,
        body: Json,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Json:
        headers: dict[str, str] = {}
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = await self.request(service, "POST", path, json=body, headers=headers)
        if (written := response.headers.get("Log-Position", "")).isdigit():
            self.position = max(self.position or 0, int(written))
        return response.json() if response.content else None

    async def optional(self, service: str, path: str, **params: str | int | None) -> Json:
        """GET, with a 404 as None (a customer without a discovery profile, say)."""
        try:
            return await self.get(service, path, **params)
        except ApiProblem as problem:
            if problem.status == 404:
                return None
            raise


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {"status": response.status_code, "detail": response.text[:300]}
