"""Detached OS processes: start one in its own session, tell whether it still runs, stop it.

Each process leads its own process group (`start_new_session`), so a signal to the group
reaches anything it started and a Ctrl-C in the terminal that ran `make up` reaches none of
them. A pid alone is not an identity once the process is gone (pids are reused), so a
process is recorded with its start time as the kernel counts it, and only signalled while
both still match.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PROC = Path("/proc")
KILL_WAIT_S = 5.0


@dataclass(frozen=True)
class Handle:
    """A started process as `state.json` remembers it."""

    pid: int
    start_ticks: int | None  # /proc/<pid>/stat field 22; None where there is no /proc
    started_at: str  # ISO 8601, UTC: for people reading the state file

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "start_ticks": self.start_ticks, "started_at": self.started_at}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Handle:
        pid, ticks = data["pid"], data.get("start_ticks")
        if not isinstance(pid, int) or not (ticks is None or isinstance(ticks, int)):
            raise ValueError(f"not a process handle: {dict(data)}")
        return cls(pid, ticks, str(data.get("started_at", "")))


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start ticks) of a live or zombie process, None when gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def _start_ticks(pid: int) -> int | None:
    found = _stat(pid)
    return found[2] if found else None


def spawn(
    argv: Sequence[str], *, log_path: Path, env: Mapping[str, str], cwd: Path
) -> tuple[Handle, subprocess.Popen[bytes]]:
    """Start `argv` detached, stdout and stderr appended to `log_path`.

    The Popen object is returned too: the parent must reap a child it started itself (a
    killed child stays a zombie, and looks alive to a signal, until its parent waits).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        # A restart appends to the same log; the marker shows where each run begins.
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== {stamp} devstack starts: {' '.join(argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    return Handle(process.pid, _start_ticks(process.pid), stamp), process


def is_running(handle: Handle) -> bool:
    """The very process `handle` names is still running (not a zombie, not a reused pid)."""
    found = _stat(handle.pid)
    if found is None:
        if PROC.is_dir():
            return False
        try:  # no /proc (not Linux): the pid is all there is to go by
            os.kill(handle.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state, _, ticks = found
    if state in ("Z", "X"):
        return False
    return handle.start_ticks is None or ticks == handle.start_ticks


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`."""
    if not PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None and found[1] == pgid and found[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def signal_group(handle: Handle, sig: signal.Signals) -> bool:
    """Send `sig` to the group `handle` leads; False when the process is already gone."""
    if not is_running(handle):
        found = _stat(handle.pid)
        if found is not None and handle.start_ticks not in (None, found[2]):
            # The pid is someone else's now. Linux reuses a pid only once no group of that id
            # is left, so nothing of ours remains either.
            return False
        # The leader is gone (or a zombie); what it started may still be in its group.
        if not _group_members(handle.pid):
            return False
    try:
        os.killpg(handle.pid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_groups(
    handles: Iterable[Handle],
    *,
    timeout: float,
    children: Mapping[int, subprocess.Popen[bytes]] | None = None,
) -> list[int]:
    """SIGTERM every group, wait up to `timeout` s, SIGKILL what is left; return those pids.

    `children` are the ones among them this process started: they are reaped on the way.
    """
    handles = list(handles)
    ours = [p for pid, p in (children or {}).items() if pid in {h.pid for h in handles}]
    pending = [h for h in handles if signal_group(h, signal.SIGTERM)]
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for process in ours:
            process.poll()
        pending = [h for h in pending if _group_members(h.pid)]
        if pending:
            time.sleep(0.1)
    killed = [h.pid for h in pending if signal_group(h, signal.SIGKILL)]
    for process in ours:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=KILL_WAIT_S)
    # Not our children: the kernel removes them once SIGKILL is delivered, which is soon.
    deadline = time.monotonic() + KILL_WAIT_S
    while any(_group_members(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    return killed


def http_status(port: int, path: str, timeout: float = 1.0, host: str = "127.0.0.1") -> int | None:
    """The status code of `GET path` on a loopback port, or None when nothing answers.

    http.client rather than an HTTP library: no proxy settings from the environment can
    send a loopback probe elsewhere.
    """
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers bind: a port whose last connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file (read from the end: logs may be large)."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 64 * 1024))
            text = file.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
