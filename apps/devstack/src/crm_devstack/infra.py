"""Where PostgreSQL and Kafka are: the environment, else what deploy/local's scripts report."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

SCRIPT_TIMEOUT_S: Final = 60.0


class InfraMissing(RuntimeError):
    """PostgreSQL or Kafka is not running and nobody named one."""


@dataclass(frozen=True)
class Infra:
    postgres_dsn: str
    kafka_bootstrap: str

    def env(self) -> dict[str, str]:
        return {"CRM_POSTGRES_DSN": self.postgres_dsn, "CRM_KAFKA_BOOTSTRAP": self.kafka_bootstrap}


def repo_root() -> Path:
    """The checkout this package is installed from (editable, in the uv workspace)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "deploy" / "local" / "postgres.sh").is_file():
            return parent
    return Path.cwd()


def _ask(script: Path, command: str, what: str) -> str:
    try:
        done = subprocess.run(
            ["bash", str(script), command],
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InfraMissing(f"could not ask {script.name} where {what} is: {error}") from error
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise InfraMissing(
            f"{what} is not running: `make infra` starts it ({script.name} said: "
            f"{done.stderr.strip() or done.returncode})"
        )
    return lines[-1]


def locate(env: Mapping[str, str], root: Path | None = None) -> Infra:
    """CRM_POSTGRES_DSN / CRM_KAFKA_BOOTSTRAP when set, else deploy/local's running servers."""
    scripts = (root or repo_root()) / "deploy" / "local"
    dsn = env.get("CRM_POSTGRES_DSN") or _ask(scripts / "postgres.sh", "dsn", "PostgreSQL")
    bootstrap = env.get("CRM_KAFKA_BOOTSTRAP") or _ask(scripts / "kafka.sh", "bootstrap", "Kafka")
    return Infra(dsn, bootstrap)
