"""HTTP to the three services as a named person: dev headers or bearer tokens."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx

from crm_demo.config import Config

Service = Literal["activity", "segmentation", "calendar-sync"]
SERVICES: Final[tuple[Service, ...]] = ("activity", "segmentation", "calendar-sync")


@dataclass(frozen=True, slots=True)
class Person:
    user: str
    name: str
    roles: tuple[str, ...]


ANNA: Final = Person("anna@example.dk", "Anna Berg", ("consultant",))
MIA: Final = Person("mia@example.dk", "Mia Holm", ("sales_manager",))


class Unreachable(RuntimeError):
    """The system (or its token issuer) does not answer: nothing to demonstrate against."""


class Refused(Unreachable):
    """The system answers but does not accept how the demo authenticates."""


class Unexpected(RuntimeError):
    """A service answered something the guide's step did not expect."""


def describe(response: httpx.Response) -> str:
    """`422 R4: <message>` for the shared error shape, else the status and a snippet."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body:
        return f"{response.status_code} {body['code']}: {body.get('detail', '')}"
    return f"{response.status_code}: {response.text[:200]}"


class Api:
    """One httpx client for the run; tokens are fetched once per person and kept."""

    def __init__(self, config: Config, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.http = httpx.Client(timeout=config.request_timeout_s, transport=transport)
        self._tokens: dict[str, str] = {}
        self._bases: dict[Service, str] = {
            "activity": config.activity_url,
            "segmentation": config.segmentation_url,
            "calendar-sync": config.calendar_url,
        }

    def close(self) -> None:
        self.http.close()

    def url(self, service: Service, path: str) -> str:
        return self._bases[service] + path

    def check_reachable(self) -> None:
        """Every service answers its liveness probe (and the issuer hands out a token)."""
        for service in SERVICES:
            url = self.url(service, "/healthz")
            try:
                response = self.http.get(url)
            except httpx.HTTPError as error:
                raise Unreachable(
                    f"the {service} service at {url} does not answer ({error})"
                ) from None
            if response.status_code != 200:
                raise Unreachable(
                    f"{url} answered {response.status_code}: not the CRM {service} service"
                )
        # One authenticated read, so a wrong auth mode fails here with one clear line
        # instead of as ten failed steps.
        probe = self.get(ANNA, "activity", "/activities", {"limit": "1"})
        if probe.status_code in (401, 403):
            raise Refused(
                f"the activity service refuses {ANNA.user} authenticated with "
                f"{self.config.auth_description}: {describe(probe)}"
            )

    def headers(self, who: Person) -> dict[str, str]:
        if self.config.token_url is None:
            return {"X-Dev-User": who.user, "X-Dev-Roles": ",".join(who.roles)}
        return {"Authorization": f"Bearer {self._token(who)}"}

    def _token(self, who: Person) -> str:
        if who.user not in self._tokens:
            assert self.config.token_url is not None
            body = {"username": who.user, "roles": list(who.roles), "name": who.name}
            try:
                response = self.http.post(self.config.token_url, json=body)
            except httpx.HTTPError as error:
                raise Unreachable(
                    f"the token issuer at {self.config.token_url} does not answer ({error})"
                ) from None
            if response.status_code != 200:
                raise Unreachable(f"the token issuer refused {who.user}: {describe(response)}")
            self._tokens[who.user] = str(response.json()["access_token"])
        return self._tokens[who.user]

    def request(
        self,
        who: Person,
        method: str,
        service: Service,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        sent = self.headers(who) | dict(headers or {})
        if method == "POST" and "Idempotency-Key" not in sent:
            # Every command carries a key, so a retried request can never act twice.
            sent["Idempotency-Key"] = str(uuid.uuid4())
        return self.http.request(
            method,
            self.url(service, path),
            json=json,
            params=params,
            content=content,
            headers=sent,
        )

    def get(
        self, who: Person, service: Service, path: str, params: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return self.request(who, "GET", service, path, params=params)

    def post(
        self,
        who: Person,
        service: Service,
        path: str,
        body: Any,
        *,
        version: int | None = None,
    ) -> httpx.Response:
        headers = {"If-Match": f'"{version}"'} if version is not None else None
        return self.request(who, "POST", service, path, json=body, headers=headers)


def expect(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The JSON object of a response with one of `statuses`, else `Unexpected`."""
    if response.status_code not in statuses:
        method, path = response.request.method, response.request.url.path
        raise Unexpected(f"{method} {path} answered {describe(response)}")
    body = response.json()
    if not isinstance(body, dict):
        raise Unexpected(f"{response.request.url.path} answered a non-object")
    return body


def error_of(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of the shared error shape; ("", text) when the body is something else."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if isinstance(body, dict):
        return str(body.get("code", "")), str(body.get("detail", ""))
    return "", str(body)[:200]
