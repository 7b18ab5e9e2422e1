"""The service's command line and wiring: refuses unsafe configurations before it connects
anywhere, imports a CSV file, and runs its workers (relay, recompute, calendar) together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from crm_contracts.cloudevents import decode
from crm_contracts.topics import CUSTOMERS
from crm_platform.messaging.transport import InProcessTransport
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor
from fastapi.testclient import TestClient
from segmentation.policy import DEFAULT_POLICY
from segmentation.service import ROLES, SegmentationService

from tests.support.people import MIA
from tests.support.polling import wait_until


def run_segmentation(
    *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segmentation", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "CRM_"))}
    env["CRM_DATA_DIR"] = str(tmp_path)
    return env


def test_dev_auth_with_a_postgres_dsn_refuses_to_start(postgres_dsn: str, tmp_path: Path) -> None:
    env = {**clean_env(tmp_path), "AUTH_MODE": "dev", "CRM_POSTGRES_DSN": postgres_dsn}
    result = run_segmentation("serve", "--port", "0", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "AUTH_MODE=dev" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_refusal_comes_before_any_connection(tmp_path: Path) -> None:
    # Nothing listens on port 1: had the service connected first, it would fail otherwise.
    env = {
        **clean_env(tmp_path),
        "AUTH_MODE": "dev",
        "CRM_POSTGRES_DSN": "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1",
    }
    result = run_segmentation("serve", "--roles", "api", "--port", "0", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "AUTH_MODE=dev" in result.stderr


def test_unknown_roles_are_refused(tmp_path: Path) -> None:
    result = run_segmentation("serve", "--roles", "api,nope", env=clean_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "nope" in result.stderr


def test_import_from_the_command_line_reports_bad_rows_and_is_idempotent(tmp_path: Path) -> None:
    csv = tmp_path / "kunder.csv"
    csv.write_text(
        "customer_id,name,cvr,owner,potential_dkk,annual_agreement_from,annual_agreement_to\n"
        "k-1,Bager Hansen ApS,12345678,,390000,,\n"
        "k-2,Kiosken,,,abc,,\n"
        "k-3,Tømrer Jensen,,,44999.99,,\n",
        encoding="utf-8",
    )
    env = clean_env(tmp_path)
    first = run_segmentation("import", str(csv), env=env, cwd=tmp_path)
    assert first.returncode == 1, first.stderr  # some rows were rejected
    report = json.loads(first.stdout)
    assert (report["imported"], report["unchanged"]) == (2, 0)
    assert [(r["line"], r["customer_id"]) for r in report["rejected"]] == [(3, "k-2")]
    assert "3/3 rows" in first.stderr  # the progress line
    again = json.loads(run_segmentation("import", str(csv), env=env, cwd=tmp_path).stdout)
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 2)
    missing = run_segmentation("import", str(tmp_path / "nope.csv"), env=env, cwd=tmp_path)
    assert missing.returncode == 2


def test_the_workers_relay_recompute_and_apply_the_calendar(tmp_path: Path) -> None:
    settings = RuntimeSettings(data_dir=tmp_path)
    transport = InProcessTransport.at(settings.transport_path)
    service = SegmentationService.build(settings, transport)
    supervisor = Supervisor(service.workers(ROLES))
    supervisor.start()
    try:
        app = service.app
        app.register_customer(MIA, customer_id="c-1", name="Bager Hansen ApS")
        app.assess_potential(MIA, "c-1", amount="360000")
        policy = DEFAULT_POLICY.to_json()
        policy["thresholds"] = {**policy["thresholds"], "A": "350000.00"}
        job = app.set_policy(MIA, policy).recomputation
        wait_until(lambda: app.recomputation(job.id).state == "done", message="recomputed")
        assert app.customer("c-1").segment == "A"

        def published() -> list[str]:
            return [
                decode(m).message.segment  # type: ignore[attr-defined]
                for m in transport.broker.messages(CUSTOMERS)
            ]

        wait_until(lambda: published()[-1:] == ["A"], message="the new segment on the topic")
        assert supervisor.alive()
        # The API answers, and its readiness checks the store and the transport.
        from crm_platform.auth import Authenticator, AuthSettings

        auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
        with TestClient(service.api(auth)) as client:
            assert client.get("/readyz").status_code == 200
    finally:
        supervisor.stop()
        service.close()
