"""deploy/local/*.sh agree with the session fixtures about the servers they started."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

LOCAL_SCRIPTS = Path(__file__).resolve().parents[2] / "deploy" / "local"


def _run(script: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(LOCAL_SCRIPTS / script), command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _require_local(server: Any) -> None:
    if server.source != "local":
        pytest.skip(f"the server comes from {server.source}, not from deploy/local")


def test_postgres_script_reports_the_fixture_server(postgres_server: Any) -> None:
    _require_local(postgres_server)
    status = _run("postgres.sh", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "running" in status.stdout
    dsn = _run("postgres.sh", "dsn")
    assert dsn.returncode == 0, dsn.stderr
    assert dsn.stdout.strip().splitlines()[-1] == postgres_server.address


def test_kafka_script_reports_the_fixture_server(kafka_server: Any) -> None:
    _require_local(kafka_server)
    status = _run("kafka.sh", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "running" in status.stdout
    bootstrap = _run("kafka.sh", "bootstrap")
    assert bootstrap.returncode == 0, bootstrap.stderr
    assert bootstrap.stdout.strip().splitlines()[-1] == kafka_server.address
