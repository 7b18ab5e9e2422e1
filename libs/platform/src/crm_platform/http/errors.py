"""The one error shape every CRM API answers with, and the exception that carries it.

Body: `{"code": "<stable_code>", "message": "<human text>", "details": {...}}`. Clients branch
on `code` (stable, snake_case); `message` is for people and may change wording; `details` is
optional and structured (field lists, limits, retry hints).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

__all__ = [
    "ApiError",
    "ErrorBody",
    "Forbidden",
    "Unauthenticated",
    "error_response",
    "error_responses",
]


class ErrorBody(BaseModel):
    """The JSON body of every error response; use it in OpenAPI `responses=`."""

    code: str = Field(description="Stable, machine-readable error code (snake_case).")
    message: str = Field(description="Human-readable explanation naming the rule or field.")
    details: dict[str, Any] | None = Field(
        default=None, description="Optional structured context, e.g. the offending fields."
    )


class ApiError(Exception):
    """Raise from a route or dependency to answer with the shared error shape.

    `install_error_handlers` turns it into the response; `headers` lets a 401 carry
    `WWW-Authenticate`, a 409 a `Retry-After`, and so on.
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

    def to_response(self) -> JSONResponse:
        return error_response(
            self.status, self.code, self.message, details=self.details, headers=self.headers
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


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = dict(details)
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the error shape for the given statuses."""
    return {
        status: {"model": ErrorBody, "description": HTTPStatus(status).phrase}
        for status in statuses
    }
