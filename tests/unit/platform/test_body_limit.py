"""BodySizeLimit: Content-Length up front, and streamed (chunked) bodies counted."""

from collections.abc import Iterator

import pytest
from crm_platform.http import BodySizeLimit, install_error_handlers
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

LIMIT = 1_000


class Note(BaseModel):
    text: str


def build_app(calls: list[str]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=LIMIT)

    @app.post("/notes")
    def create(note: Note) -> dict[str, int]:
        calls.append(note.text)
        return {"length": len(note.text)}

    @app.post("/ping")
    def ping() -> dict[str, bool]:
        calls.append("ping")  # never reads the body: only the declared length can stop it
        return {"pong": True}

    return app


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
def client(calls: list[str]) -> Iterator[TestClient]:
    with TestClient(build_app(calls)) as client:
        yield client


def chunks(total: int, size: int = 100) -> Iterator[bytes]:
    """A JSON body of `total` bytes, streamed without a Content-Length."""
    body = b'{"text": "' + b"x" * (total - 12) + b'"}'
    assert len(body) == total
    for start in range(0, total, size):
        yield body[start : start + size]


def assert_too_large(response_status: int, body: dict[str, object]) -> None:
    assert response_status == 413
    assert body["code"] == "request_too_large"
    assert body["max_bytes"] == LIMIT


def test_a_small_body_passes(client: TestClient, calls: list[str]) -> None:
    response = client.post("/notes", json={"text": "hello"})

    assert response.status_code == 200
    assert calls == ["hello"]


def test_a_body_of_exactly_the_limit_passes(client: TestClient) -> None:
    response = client.post(
        "/notes", content=b"".join(chunks(LIMIT)), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 200, response.text


def test_a_large_content_length_is_refused_before_the_app_runs(
    client: TestClient, calls: list[str]
) -> None:
    response = client.post(
        "/notes",
        content=b"".join(chunks(LIMIT + 1)),
        headers={"Content-Type": "application/json"},
    )

    assert_too_large(response.status_code, response.json())
    assert calls == []


def test_a_large_content_length_is_refused_even_where_the_body_is_never_read(
    client: TestClient, calls: list[str]
) -> None:
    response = client.post("/ping", content=b"x" * (LIMIT + 1))

    assert_too_large(response.status_code, response.json())
    assert calls == []


def test_a_large_chunked_body_is_refused(client: TestClient, calls: list[str]) -> None:
    response = client.post(
        "/notes", content=chunks(LIMIT * 5), headers={"Content-Type": "application/json"}
    )

    assert_too_large(response.status_code, response.json())
    assert calls == []


def test_a_small_chunked_body_passes(client: TestClient, calls: list[str]) -> None:
    response = client.post(
        "/notes", content=chunks(500), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 200, response.text
    assert len(calls) == 1


class RawEcho:
    """A bare ASGI app (no FastAPI around it): reads the whole body, records its headers."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.headers = dict(scope["headers"])
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


def test_a_bare_asgi_app_is_protected_too() -> None:
    raw = RawEcho()
    client = TestClient(BodySizeLimit(raw, max_bytes=LIMIT))

    refused = client.post("/", content=chunks(LIMIT * 3))
    assert b"content-length" not in raw.headers  # really streamed
    accepted = client.post("/", content=chunks(LIMIT))

    assert_too_large(refused.status_code, refused.json())
    assert (accepted.status_code, accepted.text) == (200, str(LIMIT))


def test_a_negative_limit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        BodySizeLimit(RawEcho(), max_bytes=-1)
