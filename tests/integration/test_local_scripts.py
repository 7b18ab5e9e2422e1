"""deploy/local/*.sh agree with the session fixtures about the servers they started."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka.admin import KafkaAdminClient

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


# --------------------------------------------------------------------------- restarts
# On servers of their own (CRM_LOCAL_STATE_DIR): the session's servers are shared with every
# other test, and with other test runs on this machine.


def _scripts_env(state: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("CRM_POSTGRES_DSN", "CRM_KAFKA_BOOTSTRAP")
    }
    env["CRM_LOCAL_STATE_DIR"] = str(state)
    return env


def _run_in(state: Path, script: str, command: str) -> str:
    done = subprocess.run(
        ["bash", str(LOCAL_SCRIPTS / script), command],
        env=_scripts_env(state),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{script} {command}:\n{done.stderr[-3000:]}"
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@pytest.fixture
def own_state() -> Iterator[Path]:
    """A state directory for servers of this test's own (below the repository, where the
    PostgreSQL server's own user can reach it); stopped and removed afterwards."""
    state = LOCAL_SCRIPTS.parents[1] / ".cache" / "local-scripts-tests" / uuid.uuid4().hex[:8]
    state.mkdir(parents=True)
    try:
        yield state
    finally:
        for script in ("kafka.sh", "postgres.sh"):
            if (state / script.removesuffix(".sh")).exists():
                _run_in(state, script, "down")
        shutil.rmtree(state, ignore_errors=True)


def test_postgres_comes_back_on_its_port_though_its_connections_linger(own_state: Path) -> None:
    if not (Path("/usr/lib/postgresql/15/bin/pg_ctl").exists() or shutil.which("pg_ctl")):
        pytest.skip("PostgreSQL 15 is not installed")
    dsn = _run_in(own_state, "postgres.sh", "up")
    # A client connected while the server stops: the server closes first, so its side of
    # the connection waits in TIME_WAIT on the server's port.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select 1")
        _run_in(own_state, "postgres.sh", "down")
    assert _run_in(own_state, "postgres.sh", "up") == dsn
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_kafka_comes_back_on_its_port_after_down_and_up(own_state: Path) -> None:
    if not shutil.which("java"):
        pytest.skip("java is not installed")
    bootstrap = _run_in(own_state, "kafka.sh", "up")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-local-scripts")
    try:
        admin.list_topics()
        _run_in(own_state, "kafka.sh", "down")
    finally:
        admin.close()
    # Clients keep the bootstrap address they were given.
    assert _run_in(own_state, "kafka.sh", "up") == bootstrap
    assert _run_in(own_state, "kafka.sh", "restart") == bootstrap
