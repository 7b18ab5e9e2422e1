"""503 Service Unavailable, with Retry-After, while a dependency of a request is down.

A request that cannot reach PostgreSQL (or the broker, where a path needs it synchronously)
is not a bug of ours and not the caller's fault: answering 500 would page someone for a
database restart, and clients would not know that trying again shortly is the right thing.
The exceptions come in several wrappings depending on the layer that noticed: psycopg's own
(a pooled connection lost, the pool refusing while the server is unreachable), eventsourcing's
wrappers of those (every recorder and read model), and the messaging port's.

While this process already knows PostgreSQL is unreachable, a request is answered 503 before
it runs (`FailFastWhileUnreachable`): eventsourcing retries every operation ten times 0.2 s
apart, and a command may make several, so trying would hold a worker thread for seconds per
request only to fail the same way.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Final

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_platform.eventstore import postgres_unreachable
from crm_platform.http.docs import ASSETS_PATH
from crm_platform.http.errors import error_response
from crm_platform.outages import UNAVAILABLE

log = logging.getLogger(__name__)

__all__ = [
    "RETRY_AFTER_S",
    "UNAVAILABLE",
    "FailFastWhileUnreachable",
    "install_unavailable_handlers",
]

# The pools reconnect about twice a second, so a client waiting this long finds the service
# back soon after its dependency, without hammering it meanwhile.
RETRY_AFTER_S: Final = 1

# What answers without PostgreSQL: probes, metrics, the API's own documents.
NEEDS_NO_DATABASE: Final = ("/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json")


def install_unavailable_handlers(app: FastAPI) -> None:
    """Answer 503 + Retry-After for every exception that means "a dependency is down", and
    at once while PostgreSQL is known to be unreachable."""
    for exception in UNAVAILABLE:
        app.add_exception_handler(exception, _unavailable)
    app.add_middleware(FailFastWhileUnreachable)


def _needs_no_database(path: str) -> bool:
    return path.endswith(NEEDS_NO_DATABASE) or ASSETS_PATH + "/" in path  # the docs' files


class FailFastWhileUnreachable:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _needs_no_database(str(scope["path"])):
            reason = postgres_unreachable()
            if reason is not None:
                log.warning(
                    "%s %s: PostgreSQL is unreachable (%s)",
                    scope["method"],
                    scope["path"],
                    reason.splitlines()[0],
                )
                await _answer(str(scope["path"]))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _answer(path: str) -> Response:
    return error_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "service_unavailable",
        "A service this request depends on is unavailable; try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
        instance=path,
    )


def _unavailable(request: Request, exc: Exception) -> Response:
    # One line, no traceback: during an outage every request lands here.
    log.warning(
        "%s %s: a dependency is unavailable (%s: %s)",
        request.method,
        request.url.path,
        type(exc).__name__,
        str(exc).strip().splitlines()[0] if str(exc).strip() else "",
    )
    return _answer(request.url.path)
