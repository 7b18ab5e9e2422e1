"""`python -m crm_embedded` as a child process on a free port, for end-to-end tests.

Its output goes to a file (not a pipe nobody reads, which would block the server once the
pipe's buffer fills), and is there to read when a test fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.polling import wait_until

PREFIXES = ("activity", "segmentation", "calendar-sync")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedProcess:
    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        # The child must not inherit a developer's PostgreSQL/Kafka settings: dev auth is
        # refused when they are present, and the test wants the embedded default anyway.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "AUTH_"))}
        env |= {"AUTH_MODE": "dev", "CRM_DATA_DIR": str(data_dir)}
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crm_embedded", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            cwd=data_dir.parent,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def url(self, prefix: str) -> str:
        return f"{self.base}/{prefix}"

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"crm_embedded exited early:\n{self.output()}")
        try:
            return all(
                httpx.get(f"{self.url(p)}/readyz", timeout=2).status_code == 200 for p in PREFIXES
            )
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> int | None:
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                try:
                    return self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    return self.process.wait()
            return self.process.returncode
        finally:
            self._log.close()


@contextmanager
def embedded_system(root: Path, *, timeout: float = 60) -> Iterator[EmbeddedProcess]:
    """A ready embedded system with its data under `root`; stopped on exit."""
    system = EmbeddedProcess(root / ".data", root / "crm_embedded.log")
    try:
        wait_until(system.ready, timeout=timeout, interval=0.2, message="the embedded system")
        yield system
    finally:
        system.stop()
