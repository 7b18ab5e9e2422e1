"""The service's command line: refuses unsafe configurations before it connects anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_activity(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "activity", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dev_auth_with_a_postgres_dsn_refuses_to_start(postgres_dsn: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AUTH_MODE": "dev",
        "CRM_POSTGRES_DSN": postgres_dsn,
        "CRM_DATA_DIR": str(tmp_path),
    }
    result = run_activity("serve", "--port", "0", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "AUTH_MODE=dev" in result.stderr
    assert "Traceback" not in result.stderr


def test_jwt_mode_without_an_issuer_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "CRM_"))}
    env["CRM_DATA_DIR"] = str(tmp_path)
    result = run_activity("serve", "--port", "0", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "AUTH_ISSUER" in result.stderr


def test_rebuild_read_models_from_the_command_line_matches_the_live_one(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from activity.application import ActivityApplication
    from activity.consumers import CustomerDirectory
    from activity.domain import PlanRequest
    from activity.projections import ActivityReadModel, follower
    from crm_contracts.customer import CustomerSnapshot
    from crm_contracts.enums import ActivityType, Channel, MoveReason, Segment
    from crm_platform.eventstore import StoreLocation

    from tests.support.people import ANNA

    env = StoreLocation(sqlite_path=str(tmp_path / "activity.sqlite")).env()
    directory = CustomerDirectory(env)
    now = datetime.now(UTC)
    directory.apply_snapshot(
        CustomerSnapshot(
            customer_id="c1",
            name="Bager Hansen",
            segment=Segment.C,
            prioritized=False,
            version=1,
            updated_at=now,
            actor="segmentation",
        )
    )
    app = ActivityApplication(env, directory=directory)
    live = ActivityReadModel(env)
    for day in range(1, 4):
        start = now + timedelta(days=day)
        outcome = app.plan(
            ANNA,
            PlanRequest(
                "c1",
                ANNA.user_id,
                ActivityType.STATUS_MEETING,
                Channel.PHONE,
                f"Status {day}",
                start,
                start + timedelta(hours=1),
            ),
        )
        app.move(
            ANNA,
            outcome.activity.id,
            starts_at=start + timedelta(days=7),
            ends_at=None,
            reason=MoveReason.NO_ANSWER,
            note=None,
        )
    follower(app, live).catch_up()
    app.close()
    live.close()
    directory.close()

    env_vars = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    result = run_activity(
        "rebuild-read-models", env=env_vars | {"CRM_DATA_DIR": str(tmp_path)}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 difference(s)" in result.stdout
