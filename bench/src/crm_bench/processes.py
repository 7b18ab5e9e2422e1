"""Service processes as the benchmarks run them: children started like production starts them
(`python -m <service> serve --roles …`), waited for, measured for memory and always stopped.

Each child gets its own process group, so stopping it also stops anything it started, and its
output goes to a log file in the run's scratch space: a failing start can then say why.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from crm_bench.core import REPO, Context, peak_rss_mb

log = logging.getLogger(__name__)

# Variables a child must not inherit from whoever runs the bench: each benchmark says exactly
# which settings its services get.
_OWN_PREFIXES = ("AUTH_", "CRM_", "GRAPH_", "CALENDAR_SYNC_")
STOP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def topic_prefix(schema_prefix: str) -> str:
    """An installation's topics: its own on the shared broker, so it starts from an empty
    history and leaves nothing in anybody else's."""
    return f"{schema_prefix}."


def service_env(ctx: Context, schema_prefix: str, **extra: str) -> dict[str, str]:
    """The production settings of one installation: PostgreSQL, Kafka, its own prefixes."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    data_dir = ctx.work_dir / schema_prefix
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        **inherited,
        "CRM_POSTGRES_DSN": ctx.postgres_dsn,
        "CRM_KAFKA_BOOTSTRAP": ctx.kafka_bootstrap,
        "CRM_SCHEMA_PREFIX": schema_prefix,
        "CRM_TOPIC_PREFIX": topic_prefix(schema_prefix),
        "CRM_DATA_DIR": str(data_dir),
        **extra,
    }


@dataclass
class Child:
    """One running child process and what it is in the results."""

    label: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None
    peak_rss_mb: float = 0.0

    @property
    def port_number(self) -> int:
        assert self.port is not None, f"{self.label} serves no port"
        return self.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port_number}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def read_peak_rss(self) -> float:
        """The high-water mark so far; kept, because /proc forgets it when the child exits."""
        if self.alive():
            self.peak_rss_mb = max(self.peak_rss_mb, peak_rss_mb(self.process.pid))
        return self.peak_rss_mb

    def cpu_seconds(self) -> float:
        """User + system CPU time the child has used so far (its threads included)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Children:
    """The children of one benchmark; `stop_all` stops every one, whatever state it is in."""

    log_dir: Path
    started: list[Child] = field(default_factory=list)

    def start(
        self,
        label: str,
        module_argv: Sequence[str],
        env: Mapping[str, str],
        *,
        port: int | None = None,
        profile_to: Path | None = None,
    ) -> Child:
        """`python -m <module_argv…>`, or under the bench's sampling profiler when
        `profile_to` is given (see crm_bench.profiled)."""
        argv = [sys.executable, "-m"]
        if profile_to is not None:
            argv += ["crm_bench.profiled", "--out", str(profile_to), "--"]
        argv += list(module_argv)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{label.replace(' ', '-')}-{len(self.started)}.log"
        with log_path.open("wb") as output:
            process = subprocess.Popen(
                argv,
                env=dict(env),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(label, process, log_path, port)
        self.started.append(child)
        log.info("started %s (pid %d): %s", label, process.pid, " ".join(argv[1:]))
        return child

    def wait_http(self, child: Child, path: str = "/healthz", timeout: float = 60.0) -> None:
        """Until the child answers 200 on `path`; fails at once if it died."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not child.alive():
                    raise RuntimeError(f"{child.label} exited:\n{child.tail()}")
                try:
                    if client.get(child.base_url + path).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"{child.label} did not answer {path} in {timeout} s:\n{child.tail()}")

    def stop(self, child: Child, sig: int = signal.SIGTERM) -> None:
        """Graceful first (the profiler writes its file on the way out), then the group."""
        child.read_peak_rss()
        if child.alive():
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, sig)
            try:
                child.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored signal %d; killing it", child.label, sig)
        with suppress(ProcessLookupError, PermissionError):
            # Whatever the child left behind in its group goes too.
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait(timeout=STOP_TIMEOUT_S)

    def stop_all(self) -> None:
        for child in reversed(self.started):
            try:
                self.stop(child)
            except Exception:
                log.exception("stopping %s failed", child.label)

    def peak_rss(self) -> dict[str, float]:
        """Label → MB, the highest of the children sharing a label (e.g. restarts)."""
        peaks: dict[str, float] = {}
        for child in self.started:
            peaks[child.label] = round(max(peaks.get(child.label, 0.0), child.read_peak_rss()), 1)
        return peaks


@contextmanager
def children(ctx: Context, name: str) -> Iterator[Children]:
    running = Children(ctx.work_dir / "logs" / name)
    try:
        yield running
    finally:
        running.stop_all()


def drop_schemas(dsn: str, prefix: str) -> None:
    """Every schema this installation made (`<prefix>…`), with whatever is in it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,)
        ).fetchall()
        for (schema,) in rows:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
