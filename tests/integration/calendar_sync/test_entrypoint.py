"""`python -m calendar_sync serve`: the embedded default runs the iCalendar feed; unsafe or
unknown configurations refuse to start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.polling import wait_until


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "CRM_", "GRAPH_"))}
    return {**env, "CRM_DATA_DIR": str(tmp_path), **extra}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "calendar_sync", "serve", "--port", str(port)],
        env=clean_env(tmp_path, AUTH_MODE="dev"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None  # died: stop waiting, the test will say why

    try:
        wait_until(up, timeout=60, interval=0.2, message="calendar-sync to answer")
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def test_the_embedded_default_serves_the_feed(embedded: str) -> None:
    anna = {"X-Dev-User": "anna@example.dk", "X-Dev-Roles": "consultant"}
    assert httpx.get(f"{embedded}/readyz").status_code == 200
    issued = httpx.post(f"{embedded}/calendars/anna@example.dk/token", headers=anna)
    assert issued.status_code == 200
    url = issued.json()["url"].replace("http://127.0.0.1:8003", embedded)
    feed = httpx.get(url)
    assert feed.status_code == 200
    assert feed.text.startswith("BEGIN:VCALENDAR")


def test_dev_auth_with_a_postgres_dsn_refuses_to_start(postgres_dsn: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "calendar_sync", "serve", "--port", "0"],
        env=clean_env(tmp_path, AUTH_MODE="dev", CRM_POSTGRES_DSN=postgres_dsn),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "AUTH_MODE=dev" in result.stderr


def test_an_unknown_role_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "calendar_sync", "serve", "--roles", "api,relay"],
        env=clean_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown role(s): relay" in result.stderr
