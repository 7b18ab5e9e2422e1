"""`make infra` (which `make test` runs first) fails when a server cannot be had.

It used to print the failure inside `echo "… $(postgres.sh up)"` and exit 0, after which the
tests skipped; a run that cannot test what it claims must stop here instead.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_make_infra_fails_when_postgresql_does_not_answer() -> None:
    # A configured server that does not answer: postgres.sh checks it and gives up at once.
    env = os.environ | {"CRM_POSTGRES_DSN": "postgresql://crm:crm@127.0.0.1:1/crm"}

    done = subprocess.run(
        ["make", "--no-print-directory", "infra"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode != 0, done.stdout
    assert "does not answer" in done.stderr
    assert "Kafka:" not in done.stdout  # it stopped at the first server it could not have
