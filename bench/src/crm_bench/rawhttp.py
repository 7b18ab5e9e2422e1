"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for load generation only.

Why not httpx: on this machine httpx's AsyncClient spent 5–9 ms of CPU per request (measured
against the baseline app: 0.4–0.6 cores at 70–120 req/s), as much as the baseline server
itself, and the client shares the cores with the server it measures. This client spends
0.2–0.4 ms: it writes a pre-formatted request and reads the status line, headers and a
`Content-Length` body, which is all uvicorn sends for JSON answers. Nothing else of HTTP
(chunked bodies, redirects, TLS, HTTP/2) is supported, because nothing else is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any


class HttpError(Exception):
    """The exchange failed (connection refused, reset, or an answer this client cannot read)."""


class _Stale(Exception):
    """The connection was closed before a single byte of the answer came."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class Connection:
    """One keep-alive connection; re-opened on the next request after a failure."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Answer:
        reused = self._writer is not None
        try:
            return await self._exchange(path, body, headers)
        except _Stale:
            if not reused:
                raise HttpError(f"POST {path}: the server closed the connection") from None
            # The server closed the idle keep-alive connection (uvicorn after 5 s) before our
            # request reached it: nothing was processed, so sending it again is safe.
            return await self._exchange(path, body, headers)

    async def _exchange(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Answer:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(data)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        )
        try:
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            self._writer.write(head.encode("latin-1") + data)
            try:
                raw = await self._reader.readuntil(b"\r\n\r\n")
            except (ConnectionResetError, BrokenPipeError) as error:
                await self.close()
                raise _Stale from error
            except asyncio.IncompleteReadError as error:
                if not error.partial:
                    await self.close()
                    raise _Stale from error
                raise
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            answer_headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    answer_headers[name.strip().lower()] = value.strip()
            if "content-length" not in answer_headers:
                raise HttpError(f"no Content-Length in the answer to {path}")
            content = await self._reader.readexactly(int(answer_headers["content-length"]))
        except (OSError, EOFError, ValueError, IndexError, asyncio.IncompleteReadError) as error:
            await self.close()
            raise HttpError(f"POST {path}: {error!r}") from error
        if answer_headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status, answer_headers, content)

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class Pool:
    """Connections for open-loop requests: an idle one if there is one, else a new one."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[Connection] = []
        self._all: list[Connection] = []

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Answer:
        if self._idle:
            connection = self._idle.pop()
        else:
            connection = Connection(self.host, self.port)
            self._all.append(connection)
        try:
            return await connection.post(path, body, headers)
        finally:
            self._idle.append(connection)

    async def close(self) -> None:
        for connection in self._all:
            await connection.close()
