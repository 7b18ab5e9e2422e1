"""The one error shape every CRM API answers with (RFC 9457), and the exception that carries it.

Body (`application/problem+json`):
`{"type", "title", "status", "detail", "instance", "code", ...extensions}`. Clients branch on
`code` (stable, snake_case, or a guide rule such as `R8`); `type` is the same code as a URI;
`detail` is for people and may change wording. Structured context is carried as extension
members beside them: `rule` when a guide rule refused the request, `errors` (a list of
`{field, message, type}`) when fields are invalid, and a few others (`field`, `max_bytes`,
`retry`, …) named in each route's documentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from crm_platform.errors import is_rule

__all__ = [
    "API_ERROR_STATUSES",
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_BASE",
    "ApiError",
    "FieldError",
    "Forbidden",
    "Problem",
    "Unauthenticated",
    "error_response",
    "error_responses",
    "problem_body",
]

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
# A tag URI (RFC 4151): stable and unique without promising a web page behind it, which
# RFC 9457 allows; docs/errors.md lists every code.
PROBLEM_TYPE_BASE: Final = "tag:crm-activity-backbone,2026:problem:"
# What any route of a CRM API can answer besides its own refusals: who you are, what you may,
# the body's size, type and validity, and a dependency that is down for a moment.
API_ERROR_STATUSES: Final = (400, 401, 403, 413, 415, 422, 503)
_RESERVED: Final = frozenset({"type", "title", "status", "detail", "instance", "code"})


class FieldError(BaseModel):
    field: str = Field(description="Where: `body.subject`, `query.limit`, `header.If-Match`.")
    message: str
    type: str = Field(description="What kind of problem, e.g. `string_too_long`.")


class Problem(BaseModel):
    """RFC 9457 problem details; the schema every error response is documented with."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description=f"`{PROBLEM_TYPE_BASE}<code>`.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    detail: str = Field(description="Human-readable explanation naming the rule or field.")
    instance: str | None = Field(default=None, description="The path that was requested.")
    code: str = Field(description="Stable, machine-readable error code or guide rule (`R8`).")
    rule: str | None = Field(default=None, description="The sales guide's rule, e.g. `R8`.")
    errors: list[FieldError] | None = Field(
        default=None, description="The invalid fields, when the request had any."
    )


class ApiError(Exception):
    """Raise from a route or dependency to answer with the shared error shape.

    `install_error_handlers` turns it into the response; `headers` lets a 401 carry
    `WWW-Authenticate`, a 409 a `Retry-After`, and so on. `details` become extension
    members of the problem.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details) if details is not None else None
        self.headers = dict(headers) if headers is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r})"

    def to_response(self, instance: str | None = None) -> JSONResponse:
        return error_response(
            self.status,
            self.code,
            self.message,
            details=self.details,
            headers=self.headers,
            instance=instance,
        )


class Unauthenticated(ApiError):
    """401: no credentials or credentials we do not accept.

    The message is deliberately the same whatever check failed, so a caller probing with
    forged tokens learns nothing; the reason goes to the server log instead.
    """

    def __init__(self, challenge: str = "Bearer") -> None:
        super().__init__(
            HTTPStatus.UNAUTHORIZED,
            "unauthenticated",
            "Authentication is required: send valid credentials.",
            headers={"WWW-Authenticate": challenge},
        )


class Forbidden(ApiError):
    """403: the caller is known but may not do this."""

    def __init__(self, message: str = "You are not allowed to perform this operation.") -> None:
        super().__init__(HTTPStatus.FORBIDDEN, "forbidden", message)


def problem_body(
    status: int,
    code: str,
    message: str,
    *,
    details: Mapping[str, Any] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": _phrase(status),
        "status": int(status),
        "detail": message,
    }
    if instance is not None:
        body["instance"] = instance
    body["code"] = code
    if is_rule(code):
        body["rule"] = code
    for key, value in (details or {}).items():
        # A detail may never overwrite a member RFC 9457 or our clients rely on.
        body[f"{key}_detail" if key in _RESERVED else key] = value
    return body


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, message, details=details, instance=instance),
        status_code=status,
        headers=dict(headers) if headers else None,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the problem shape for the given statuses."""
    return {status: _documented(status) for status in statuses}


def _documented(status: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "description": _phrase(status),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}},
    }
    headers = _HEADERS.get(status)
    if headers:
        entry["headers"] = headers
    return entry


_RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string"},
    }
}
_HEADERS: Final[dict[int, dict[str, Any]]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The authentication scheme.",
            "schema": {"type": "string"},
        }
    },
    405: {"Allow": {"description": "The methods the path allows.", "schema": {"type": "string"}}},
    503: _RETRY_AFTER,
}


def _inline_schema() -> dict[str, Any]:
    # Inlined rather than a components reference: the per-status entries are plain dicts that
    # FastAPI copies as they are, so a `$ref` would point at a schema nobody registered.
    schema = Problem.model_json_schema()
    definitions = schema.pop("$defs", {})
    errors = schema["properties"]["errors"]
    for option in errors.get("anyOf", []):
        if option.get("items", {}).get("$ref"):
            option["items"] = definitions["FieldError"]
    return schema


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"


_PROBLEM_SCHEMA: Final = _inline_schema()
