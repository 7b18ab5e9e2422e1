"""CSV uploads (imports): a larger body limit on their path, the body spooled, rows as text.

An import's file may be far larger than any JSON command, so `UploadLimits` gives the paths
ending in an import suffix their own limit. `spooled_body` reads the request in chunks into a
spooled file (small files stay in memory, large ones go to disk); `csv_lines` reads it back
as text lines for `csv.reader`, refusing what is not UTF-8 with a clear problem.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, Final

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_platform.http.errors import ApiError
from crm_platform.http.limits import BodySizeLimit

__all__ = [
    "CSV_BODY",
    "CSV_MEDIA_TYPES",
    "SPOOL_BYTES",
    "UploadLimits",
    "csv_lines",
    "spooled_body",
]

SPOOL_BYTES: Final = 1_048_576  # held in memory up to this size, then spooled to disk
CSV_MEDIA_TYPES: Final = ("text/csv", "text/plain", "application/octet-stream")
CSV_BODY: Final[dict[str, Any]] = {
    "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}
}
"""`openapi_extra` of an import route: its body is a CSV file, not JSON."""


class UploadLimits:
    """The body limit, with a larger one for paths ending in one of `upload_suffixes`:
    one ASGI middleware choosing between two `BodySizeLimit`s by path."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_bytes: int,
        upload_suffixes: Sequence[str],
    ) -> None:
        self._default = BodySizeLimit(app, max_bytes=max_bytes)
        self._upload = BodySizeLimit(app, max_bytes=upload_bytes)
        self._suffixes = tuple(upload_suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        upload = str(scope.get("path", "")).endswith(self._suffixes)
        await (self._upload if upload else self._default)(scope, receive, send)


async def spooled_body(request: Request) -> IO[bytes]:
    """The request's CSV body in a spooled file, at its start; the caller closes it.
    415 unless the body is sent as CSV (or plain text, or bytes)."""
    kind = request.headers.get("content-type", "text/csv").split(";")[0].strip().lower()
    if kind not in CSV_MEDIA_TYPES:
        raise ApiError(415, "unsupported_media_type", "send the file as text/csv")
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    try:
        async for chunk in request.stream():
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


@contextmanager
def csv_lines(spool: IO[bytes]) -> Iterator[io.TextIOWrapper]:
    """The spooled file as text lines for `csv.reader`; 422 `encoding` if it is not UTF-8.
    utf-8-sig: spreadsheets often write a byte order mark; newline="" as csv wants it."""
    lines = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
    try:
        yield lines
    except UnicodeDecodeError:
        raise ApiError(422, "encoding", "the file must be UTF-8 text") from None
    finally:
        lines.detach()  # the spool is closed by its owner
