"""A PostgreSQL and a Kafka broker of the fault tests' own, to stop, start and restart.

The other tiers share one PostgreSQL and one broker for the whole session (and with other
test runs on the machine); restarting those would fail whatever runs against them meanwhile.
So this tier starts its own with `deploy/local/{postgres,kafka}.sh`, the same scripts as
`make infra`, under a state directory of its own (CRM_LOCAL_STATE_DIR), and drives the faults
through them: a restart keeps the port, as it does for people using the scripts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
SCRIPTS: Final = REPO / "deploy" / "local"
# A first Kafka start may fetch the broker's jars with Maven into .cache/kafka/libs.
FIRST_UP_TIMEOUT_S: Final = 900
SCRIPT_TIMEOUT_S: Final = 120


class InfraError(RuntimeError):
    pass


@dataclass
class PrivateInfra:
    """Servers under `state_dir`; `postgres_dsn` and `kafka_bootstrap` stay the same across
    every stop, start and restart."""

    state_dir: Path
    postgres_dsn: str = ""
    kafka_bootstrap: str = ""

    def env(self) -> dict[str, str]:
        # A developer's CRM_POSTGRES_DSN / CRM_KAFKA_BOOTSTRAP would make the scripts manage
        # nothing (external servers); these are ours.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CRM_POSTGRES_DSN", "CRM_KAFKA_BOOTSTRAP")
        }
        env["CRM_LOCAL_STATE_DIR"] = str(self.state_dir)
        return env

    def script(self, script: str, command: str, timeout: float = SCRIPT_TIMEOUT_S) -> str:
        """Run `deploy/local/<script> <command>`; its last line of output."""
        try:
            done = subprocess.run(
                ["bash", str(SCRIPTS / script), command],
                env=self.env(),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise InfraError(f"`{script} {command}` could not run: {error}") from error
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-40:])
            raise InfraError(f"`{script} {command}` exited {done.returncode}:\n{tail}")
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def up(self) -> None:
        # A start that fails is tried once more after stopping what came up: this tier's
        # setup failed once on a busy machine (right after another clone's CI run), and a
        # second try makes an environmental hiccup no failed run; a real fault fails twice.
        for attempt in (1, 2):
            try:
                self.postgres_dsn = self.script("postgres.sh", "up", FIRST_UP_TIMEOUT_S)
                self.kafka_bootstrap = self.script("kafka.sh", "up", FIRST_UP_TIMEOUT_S)
                return
            except InfraError as error:
                if attempt == 2:
                    raise
                warnings.warn(
                    f"the fault tests' servers did not start, again: {error}", stacklevel=1
                )
                self.down()

    def stop_postgres(self) -> None:
        self.script("postgres.sh", "down")

    def start_postgres(self) -> None:
        dsn = self.script("postgres.sh", "up")
        if dsn != self.postgres_dsn:
            raise InfraError(f"PostgreSQL came back at {dsn}, not at {self.postgres_dsn}")

    def restart_kafka(self) -> None:
        bootstrap = self.script("kafka.sh", "restart")
        if bootstrap != self.kafka_bootstrap:
            raise InfraError(f"Kafka came back at {bootstrap}, not at {self.kafka_bootstrap}")

    def down(self) -> None:
        for script in ("kafka.sh", "postgres.sh"):
            try:
                self.script(script, "down")
            except InfraError as error:
                warnings.warn(f"could not stop the fault tests' servers: {error}", stacklevel=1)


def tools_missing() -> str | None:
    """Why this machine cannot run the local servers, or None."""
    pg = Path("/usr/lib/postgresql/15/bin/pg_ctl").exists() or shutil.which("pg_ctl")
    if not pg:
        return "PostgreSQL 15 (pg_ctl) is not installed"
    if not shutil.which("java"):
        return "java is not installed"
    return None


@contextmanager
def private_infra() -> Iterator[PrivateInfra]:
    """Both servers up under a fresh state directory in .cache/faults; stopped and removed
    afterwards. (Under the repository: the PostgreSQL server's own user can reach it.)"""
    state = REPO / ".cache" / "faults" / f"run-{uuid.uuid4().hex[:8]}"
    state.mkdir(parents=True)
    infra = PrivateInfra(state)
    try:
        infra.up()
        yield infra
    finally:
        infra.down()
        shutil.rmtree(state, ignore_errors=True)
