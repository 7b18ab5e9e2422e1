"""A request whose dependency is down answers 503 with Retry-After, not 500."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from crm_platform.eventstore import ResilientPool
from crm_platform.http import install_error_handlers
from crm_platform.messaging.port import PublishError
from eventsourcing.persistence import InterfaceError, OperationalError, ProgrammingError
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, TopicAlreadyExistsError
from psycopg_pool import PoolTimeout


def app_raising(error: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/commands")
    def command() -> None:
        raise error

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    "error",
    [
        PoolTimeout("PostgreSQL is unreachable: connection refused"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.InterfaceError("the connection is closed"),
        OperationalError("couldn't get a connection after 5.00 sec"),
        InterfaceError("the connection is lost"),
        PublishError("Kafka did not accept the messages"),
        KafkaConnectionError("connection refused"),
        KafkaTimeoutError("metadata not updated after 60 s"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_unavailable_dependency_answers_503_with_retry_after(error: Exception) -> None:
    answer = app_raising(error).post("/commands")
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) >= 1
    body = answer.json()
    assert body["code"] == "service_unavailable"
    assert body["status"] == 503
    # The server's words stay in the server's log.
    assert "connection" not in body["detail"]


@pytest.mark.parametrize(
    "error",
    [ProgrammingError('relation "x" does not exist'), TopicAlreadyExistsError()],
    ids=lambda error: type(error).__name__,
)
def test_a_bug_is_still_a_500(error: Exception) -> None:
    answer = app_raising(error).post("/commands")
    assert answer.status_code == 500
    assert "Retry-After" not in answer.headers


@pytest.fixture
def unreachable_pool() -> Iterator[ResilientPool]:
    """A pool of this process that has found PostgreSQL unreachable (never opened)."""
    pool = ResilientPool("postgresql://nobody@127.0.0.1:9/none", open=False)
    pool._unreachable = "connection refused"
    yield pool
    pool._unreachable = None
    pool.close()


def test_while_postgres_is_known_unreachable_requests_are_refused_before_they_run(
    unreachable_pool: ResilientPool,
) -> None:
    app = FastAPI()
    install_error_handlers(app)
    ran: list[str] = []

    @app.post("/commands")
    def command() -> dict[str, str]:
        ran.append("command")
        return {}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    client = TestClient(app)
    answer = client.post("/commands")
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "1")
    assert answer.json()["code"] == "service_unavailable"
    assert ran == []
    assert client.get("/healthz").status_code == 200  # probes still answer

    unreachable_pool._unreachable = None  # a reconnect succeeded
    assert client.post("/commands").status_code == 200
    assert ran == ["command"]
