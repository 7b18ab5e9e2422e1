"""Exception handlers that give every failure of a FastAPI app the shared problem shape."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from crm_platform.http.errors import ApiError, error_response
from crm_platform.http.openapi import tidy_parameters
from crm_platform.http.unavailable import install_unavailable_handlers

log = logging.getLogger(__name__)

__all__ = ["allowed_methods", "field_path", "install_error_handlers"]

# A huge payload can fail on every element; the client needs the first few to fix it.
MAX_REPORTED_ERRORS = 20
# Custom validators may put input into their message; cap it so nothing large is echoed.
MAX_MESSAGE_CHARS = 300

# Error types of the door's own checks that answer under their own code (crm_platform.values).
NAMED_REFUSALS = frozenset({"time_out_of_range", "money_as_string"})

# Codes for the statuses Starlette and FastAPI raise themselves (routing, security helpers).
_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}


def install_error_handlers(app: FastAPI) -> None:
    """Map ApiError, validation errors, HTTP exceptions and crashes to the problem shape (and
    document the parameters as HTTP carries them, so the document matches what is checked)."""
    tidy_parameters(app)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_exception)
    install_unavailable_handlers(app)
    app.add_exception_handler(Exception, _unhandled)


def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.to_response(instance=request.url.path)


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for error in errors:
        if error.get("type") == "json_invalid":
            return _malformed_json(request, error)
    fields = [
        {
            "field": field_path(error.get("loc", ())),
            "message": _clip(str(error.get("msg", "invalid value"))),
            "type": str(error.get("type", "value_error")),
        }
        for error in errors[:MAX_REPORTED_ERRORS]
    ]
    if fields:
        first = fields[0]
        message = f"{first['field']}: {first['message']}"
    else:
        message = "The request is invalid."
    details: dict[str, Any] = {"errors": fields}
    if len(errors) > MAX_REPORTED_ERRORS:
        details["truncated"] = True
        details["error_count"] = len(errors)
    kinds = {str(error.get("type")) for error in errors}
    # A refusal of its own kind keeps its own code, so clients (and the fuzz tier) can tell a
    # rule no schema can state from a request that does not fit the document.
    code = kinds.pop() if len(kinds) == 1 and kinds <= NAMED_REFUSALS else "validation_error"
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        code,
        message,
        details=details,
        instance=request.url.path,
    )


def _malformed_json(request: Request, error: Any) -> Response:
    loc = error.get("loc", ())
    # FastAPI puts the character offset of the syntax error after "body".
    position = loc[-1] if loc and isinstance(loc[-1], int) else None
    reason = _clip(str((error.get("ctx") or {}).get("error", "JSON decode error")))
    message = f"The request body is not valid JSON: {reason}"
    details: dict[str, Any] | None = None
    if position is not None:
        message += f" (at character {position})"
        details = {"position": position}
    # 400, not 422: the content cannot even be read (RFC 9110 §15.5.1 vs §15.5.21).
    return error_response(
        HTTPStatus.BAD_REQUEST,
        "malformed_json",
        message + ".",
        details=details,
        instance=request.url.path,
    )


def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    default_phrase = _phrase(status)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else default_phrase
    headers = dict(exc.headers or {})
    # Starlette's own 404/405 carry only the status phrase; say what was asked for instead.
    if detail == default_phrase and status == HTTPStatus.NOT_FOUND:
        detail = f"Nothing is found at {request.method} {request.url.path}."
    elif status == HTTPStatus.METHOD_NOT_ALLOWED:
        # Starlette names only the methods of the one route it tried; a path served by
        # several routes (GET and POST /customers) allows all of theirs.
        allowed = allowed_methods(request) or headers.get("Allow", "")
        headers["Allow"] = allowed
        if detail == default_phrase:
            detail = f"Method {request.method} is not allowed here" + (
                f"; allowed: {allowed}." if allowed else "."
            )
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        log.error("HTTP %s raised on %s %s", status, request.method, request.url.path)
    return error_response(status, code, detail, headers=headers, instance=request.url.path)


def allowed_methods(request: Request) -> str:
    """Every method the app documents at the request's path, as an `Allow` value.

    Read from the app's OpenAPI document (public, and cached by FastAPI) rather than its
    router, whose internals change between FastAPI versions.
    """
    app = request.scope.get("app")
    if not isinstance(app, FastAPI):
        return ""
    path = request.scope.get("path", "")
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    methods: set[str] = set()
    for pattern, documented, literal in _documented_paths(app):
        if pattern.fullmatch(path):
            if literal:
                # A literal path (`/customers/import`) is routed before any template
                # (`/customers/{customer_id}`) that would also match it.
                methods = set(documented)
                break
            methods |= documented
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


Documented = list[tuple[re.Pattern[str], set[str], bool]]


def _documented_paths(app: FastAPI) -> Documented:
    cached: Documented | None = getattr(app.state, "documented_paths", None)
    if cached is None:
        cached = [
            (
                re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))),
                {method.upper() for method in operations if method in _HTTP_METHODS},
                "{" not in template,
            )
            for template, operations in app.openapi().get("paths", {}).items()
        ]
        app.state.documented_paths = cached
    return cached


def _unhandled(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "internal_error",
        "An internal error occurred; it has been logged.",
        instance=request.url.path,
    )


def field_path(loc: Sequence[Any]) -> str:
    """`("body", "items", 0, "subject")` → `body.items[0].subject`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "request"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
