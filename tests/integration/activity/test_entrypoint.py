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
