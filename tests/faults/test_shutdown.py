"""SIGTERM drains and stops a process within 10 s, as Kubernetes and `make down` expect.

Draining matters beyond the exit code: a consumer that just dies keeps its partitions until
the group gives up on it (a whole session timeout), while one that stops cleanly leaves its
group and its partitions move at once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from crm_devstack.issuer import auth_env
from crm_devstack.layout import Ports
from kafka.admin import KafkaAdminClient
from kafka.errors import CoordinatorNotAvailableError

from tests.e2e.embedded_process import EmbeddedProcess, embedded_system
from tests.e2e.stack_fixture import stack_env, unique_prefix
from tests.faults.infra import REPO, PrivateInfra
from tests.support.polling import wait_until
from tests.support.schemas import drop_schemas

pytestmark = pytest.mark.timeout(180)

# The acceptance bound: Kubernetes' default grace period is 30 s, ours is a third of it.
STOP_WITHIN_S = 10.0
READY_TIMEOUT_S = 90.0


def ready(port: int, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"the process exited early:\n{log.read_text()[-3000:]}")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def group_members(bootstrap: str, group: str) -> list[Any]:
    """The group's members; none while a fresh broker has no group coordinator yet."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="faults-shutdown")
    try:
        described = admin.describe_groups([group])[group]
    except CoordinatorNotAvailableError:
        return []
    finally:
        admin.close()
    return list(described.get("members") or [])


def stop_in_time(process: subprocess.Popen[Any], sig: signal.Signals) -> tuple[int, float]:
    """Send `sig`; the exit code and the seconds it took (killed after the bound)."""
    began = time.monotonic()
    process.send_signal(sig)
    try:
        code = process.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"still running {STOP_WITHIN_S:.0f} s after {sig.name}") from None
    return code, time.monotonic() - began


@pytest.fixture
def prefix(infra: PrivateInfra) -> Iterator[str]:
    name = unique_prefix()
    yield name
    drop_schemas(infra.postgres_dsn, name)


def test_a_service_with_its_workers_stops_within_10_s_of_sigterm_and_leaves_its_group(
    infra: PrivateInfra, prefix: str, tmp_path: Path
) -> None:
    port = Ports.free()["activity-api"]
    env = stack_env(infra.postgres_dsn, infra.kafka_bootstrap, prefix)
    # Tokens are checked against an issuer only when a request comes; none does here.
    env |= auth_env("127.0.0.1", Ports.free()["issuer"]) | {"CRM_POOL_SIZE": "2"}
    log = tmp_path / "activity.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "activity", "serve", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: ready(port, process, log),
            timeout=READY_TIMEOUT_S,
            message="the activity service ready",
        )
        group = f"{prefix}activity.customers"
        wait_until(
            lambda: group_members(infra.kafka_bootstrap, group),
            timeout=60,
            message="its customer-directory consumer in the group",
        )

        code, took = stop_in_time(process, signal.SIGTERM)
        print(f"\nactivity serve, every role: stopped {took:.1f} s after SIGTERM")
        assert code == 0, log.read_text()[-3000:]
        # Left, not abandoned: the group has no member waiting out a session timeout.
        assert group_members(infra.kafka_bootstrap, group) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedProcess]:
    with embedded_system(tmp_path, timeout=READY_TIMEOUT_S) as running:
        yield running


def test_the_embedded_feed_url_is_served_by_the_embedded_server(embedded: EmbeddedProcess) -> None:
    owner = f"anna.{uuid.uuid4().hex[:8]}@example.dk"
    issued = httpx.post(
        f"{embedded.url('calendar-sync')}/calendars/{owner}/token",
        headers={"X-Dev-User": owner, "X-Dev-Roles": "consultant"},
        timeout=10,
    )
    assert issued.status_code == 200, issued.text
    url = issued.json()["url"]
    assert url.startswith(f"{embedded.base}/calendar-sync/calendars/"), url
    # What Outlook does with the URL: no headers, just the secret in it.
    feed = httpx.get(url, timeout=10)
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    assert feed.text.startswith("BEGIN:VCALENDAR")


def test_the_embedded_system_stops_within_10_s_of_sigterm(embedded: EmbeddedProcess) -> None:
    code, took = stop_in_time(embedded.process, signal.SIGTERM)
    print(f"\ncrm_embedded: stopped {took:.1f} s after SIGTERM")
    assert code == 0, embedded.output()
