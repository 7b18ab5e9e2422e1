"""/readyz answers within a second whatever its dependencies do, and 503 while one is down."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from crm_platform.ops import READY_TIMEOUT_S, ops_router
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from tests.support.polling import wait_until

# The acceptance bound: a probe with Kubernetes' default one-second timeout gets an answer.
PROBE_TIMEOUT_S = 1.0


@pytest.fixture
def hanging() -> Iterator[threading.Event]:
    release = threading.Event()
    yield release
    release.set()  # let the daemon threads of the hung checks finish


def client(**checks: object) -> TestClient:
    app = FastAPI()
    app.include_router(ops_router(CollectorRegistry(), checks))  # type: ignore[arg-type]
    return TestClient(app)


def test_ready_when_every_check_answers() -> None:
    answer = client(store=lambda: 1, transport=lambda: None).get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": {"store": "ok", "transport": "ok"}}


def test_a_failing_check_is_503_naming_it() -> None:
    def down() -> None:
        raise ConnectionRefusedError("connection refused")

    answer = client(store=lambda: 1, transport=down).get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"] == {"store": "ok", "transport": "unavailable"}


def test_a_check_that_hangs_is_503_within_the_probe_timeout(hanging: threading.Event) -> None:
    runs: list[float] = []

    def stuck() -> None:
        runs.append(time.monotonic())
        hanging.wait(60)

    probe = client(store=stuck, transport=lambda: None)
    for _ in range(3):
        began = time.monotonic()
        answer = probe.get("/readyz")
        assert time.monotonic() - began < PROBE_TIMEOUT_S
        assert answer.status_code == 503
        assert answer.json()["checks"] == {"store": "unavailable", "transport": "ok"}
    # Probes join the run still under way instead of piling up threads on the dependency.
    assert len(runs) == 1

    hanging.set()
    wait_until(
        lambda: probe.get("/readyz").status_code == 200,
        timeout=10,
        message="ready again once the dependency answers",
    )
    assert READY_TIMEOUT_S < PROBE_TIMEOUT_S
