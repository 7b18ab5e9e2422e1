"""A pure-ASGI request body size limit.

Content-Length is checked before the app runs; a body without one (chunked transfer) is
counted as the app reads it, so a client cannot get past the limit by streaming.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_platform.http.errors import error_response

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodySizeLimit", "BodyTooLarge"]

DEFAULT_MAX_BODY_BYTES = 1_048_576


class BodyTooLarge(HTTPException):
    """Raised from `receive()` when a streamed body passes the limit.

    An HTTPException on purpose: FastAPI re-raises those while parsing a body, where it
    would turn any other exception into a 400.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _message(max_bytes))


class BodySizeLimit:
    """Refuse request bodies larger than `max_bytes` with 413 `request_too_large`."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        too_large = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            # Whatever the app makes of the interrupted read, the client gets our 413.
            if too_large and not response_started:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large or response_started:
                raise
        if too_large and not response_started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "request_too_large",
            _message(self.max_bytes),
            details={"max_bytes": self.max_bytes},
            # The rest of the body is never read, so the connection cannot be reused.
            headers={"Connection": "close"},
            instance=scope.get("path"),
        )
        await response(scope, receive, send)


def _message(max_bytes: int) -> str:
    return f"The request body is larger than the limit of {max_bytes} bytes."


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                # The server rejects a malformed header itself; counting still protects us.
                return None
    return None
