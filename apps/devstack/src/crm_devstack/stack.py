"""The production-like stack on one machine: start, watch, kill and stop its processes.

`python -m crm_devstack` and the end-to-end tests drive the same `Stack`: the tests kill and
restart single processes through it to show the system converges.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from crm_devstack.issuer import TOKEN_PATH, auth_env
from crm_devstack.layout import APIS, BY_NAME, HOST, ISSUER, LAYOUT, NAMES, WEB, Entry, Ports
from crm_devstack.processes import (
    Handle,
    http_status,
    is_running,
    port_is_free,
    signal_group,
    spawn,
    stop_groups,
    tail,
)
from crm_devstack.state import Record, State, StateDir

READY_TIMEOUT_S: Final = 120.0  # nine Python processes importing on two shared cores
STOP_TIMEOUT_S: Final = 20.0  # workers finish their batch and leave their consumer groups
POLL_S: Final = 0.2
REQUIRED_ENV: Final = ("CRM_POSTGRES_DSN", "CRM_KAFKA_BOOTSTRAP")
LOG_TAIL_LINES: Final = 40


class StackError(RuntimeError):
    """The stack could not be started; `log_tail` holds the end of the failing log."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    pid: int | None
    port: int
    url: str
    log: Path
    running: bool
    ready: bool | None  # None: not asked (not running)


class Stack:
    """The processes of `LAYOUT`, with their state in `state_dir`.

    `env` is the environment every process starts from; it must name PostgreSQL and Kafka
    (`CRM_POSTGRES_DSN`, `CRM_KAFKA_BOOTSTRAP`). AUTH_* in it is replaced by the issuer's.
    """

    def __init__(
        self,
        state_dir: Path,
        ports: Ports,
        env: Mapping[str, str],
        *,
        cwd: Path | None = None,
        python: str = sys.executable,
        ready_timeout: float = READY_TIMEOUT_S,
        stop_timeout: float = STOP_TIMEOUT_S,
        say: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.dir = StateDir(state_dir)
        self.ports = ports
        self.env = dict(env)
        self.cwd = cwd or Path.cwd()
        self.python = python
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.say = say
        # Children this object started: it reaps them, or a killed one stays a zombie.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # --- what runs where ----------------------------------------------------------------------
    def url(self, name: str) -> str:
        return self.ports.url(name)

    def addresses(self) -> dict[str, str]:
        """stack.json: where `make demo` finds the APIs and a token."""
        found = {key: self.url(name) for key, name in APIS.items()}
        found["token_url"] = self.url(ISSUER) + TOKEN_PATH
        return found

    def argv(self, entry: Entry) -> tuple[str, ...]:
        port = str(self.ports[entry.name])
        if entry.roles is None:
            key = str(self.dir.path / "issuer-key.pem")
            return (self.python, "-m", entry.module, "--host", HOST, "--port", port, "--key", key)
        if entry.name == WEB:
            return (self.python, "-m", entry.module, "serve", "--host", HOST, "--port", port)
        serve = (self.python, "-m", entry.module, "serve", "--roles", entry.roles)
        return (*serve, "--host", HOST, "--port", port)

    def process_env(self) -> dict[str, str]:
        missing = [name for name in REQUIRED_ENV if not self.env.get(name)]
        if missing:
            raise StackError(f"set {' and '.join(missing)}: the stack runs on PostgreSQL and Kafka")
        env = {k: v for k, v in self.env.items() if not k.startswith("AUTH_")}
        env |= auth_env(HOST, self.ports[ISSUER])
        # Feed URLs handed out must reach this stack's API, unless told otherwise.
        env.setdefault("CALENDAR_SYNC_FEED_BASE_URL", self.url("calendar-sync-api"))
        # The cockpit signs people in through the local issuer and calls this stack's APIs.
        env |= {
            "CRM_WEB_SIGN_IN": "issuer",
            "CRM_WEB_TOKEN_URL": self.url(ISSUER) + TOKEN_PATH,
            "CRM_WEB_ACTIVITY_URL": self.url("activity-api"),
            "CRM_WEB_SEGMENTATION_URL": self.url("segmentation-api"),
            "CRM_WEB_CALENDAR_URL": self.url("calendar-sync-api"),
        }
        # Eight processes share one PostgreSQL (and here, other people's tests) on a laptop.
        env.setdefault("CRM_POOL_SIZE", "4")
        # Nothing should fall back to SQLite files, but if it did, not into `make run`'s .data.
        env.setdefault("CRM_DATA_DIR", str(self.dir.path / "data"))
        env["PYTHONUNBUFFERED"] = "1"
        if "PYTHONPYCACHEPREFIX" not in env:
            # Without bytecode caches each process compiles its imports again: seconds of CPU
            # times nine. Cached under the state directory, the source tree stays clean.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.dir.path / "pycache")
        return env

    def settings_summary(self) -> dict[str, str]:
        env = self.process_env()
        graph = "Microsoft Graph" if env.get("GRAPH_TENANT_ID") else "iCalendar feed"
        if env.get("GRAPH_BASE_URL"):
            graph += f" at {env['GRAPH_BASE_URL']}"
        return {
            "postgres": env["CRM_POSTGRES_DSN"],
            "kafka": env["CRM_KAFKA_BOOTSTRAP"],
            "schema_prefix": env.get("CRM_SCHEMA_PREFIX", ""),
            "calendar": graph,
        }

    # --- lifecycle ----------------------------------------------------------------------------
    def running(self) -> dict[str, Record]:
        return {n: r for n, r in self.dir.load().processes.items() if self._is_running(r.handle)}

    def up(self) -> list[str]:
        """Start every process that does not run; return their names once all are ready.

        Already running: nothing to do, returns []. On a failure, stops what this call
        started and raises StackError with the end of the failing process's log.
        """
        running = self.running()
        wanted = [entry for entry in LAYOUT if entry.name not in running]
        if not wanted:
            return []
        env = self.process_env()
        taken = [e.name for e in wanted if not port_is_free(self.ports[e.name])]
        if taken:
            ports = ", ".join(f"{self.ports[n]} ({n})" for n in taken)
            raise StackError(f"port(s) in use by something else: {ports}")
        state = self.dir.load()
        state.ports = self.ports.to_json()
        state.settings = self.settings_summary()
        try:
            self._bring_up(wanted, state, env)
        except BaseException:
            # Also on Ctrl-C: a half-started stack is worse than none.
            started = [e.name for e in wanted if e.name in state.processes]
            self._stop([state.processes[n] for n in started])
            for name in started:
                state.processes.pop(name, None)
            self.dir.save(state)
            raise
        self.dir.write_stack(self.addresses())
        return [e.name for e in wanted]

    def down(self) -> list[str]:
        """Stop every process of the stack (SIGTERM, then SIGKILL after the timeout).

        Returns the names that had to be killed. Fine when nothing runs.
        """
        state = self.dir.load()
        records = list(state.processes.values())
        killed = self._stop(records)
        self.dir.clear()
        by_pid = {r.handle.pid: r.name for r in records}
        return [by_pid[pid] for pid in killed]

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` to one process (default SIGKILL: a crash); wait until it is gone."""
        record = self._record(name)
        signal_group(record.handle, sig)
        deadline = time.monotonic() + self.stop_timeout
        while self._is_running(record.handle):
            if time.monotonic() > deadline:
                raise StackError(f"{name} (pid {record.handle.pid}) still runs after {sig.name}")
            time.sleep(0.05)

    def stop(self, name: str) -> None:
        """Stop one process the way `down` does."""
        self._stop([self._record(name)])

    def start(self, *names: str) -> list[Record]:
        """(Re)start processes on their ports, together, and wait until they are ready."""
        entries = [BY_NAME[name] for name in names]
        state = self.dir.load()
        for name in names:
            current = state.processes.get(name)
            if current is not None and self._is_running(current.handle):
                raise StackError(f"{name} already runs (pid {current.handle.pid})")
        self._bring_up(entries, state, self.process_env())
        return [state.processes[name] for name in names]

    def status(self) -> list[ProcessStatus]:
        state = self.dir.load()
        found = []
        for name in [*NAMES, *sorted(set(state.processes) - set(NAMES))]:
            record = state.processes.get(name)
            entry = BY_NAME.get(name)
            port = record.port if record else self.ports[name]
            running = record is not None and self._is_running(record.handle)
            ready: bool | None = None
            if running and entry is not None:
                ready = http_status(port, entry.ready_path) == 200
            found.append(
                ProcessStatus(
                    name,
                    record.handle.pid if record else None,
                    port,
                    f"http://{HOST}:{port}",
                    self.dir.log(name),
                    running,
                    ready,
                )
            )
        return found

    def close(self) -> None:
        """Reap children this object started that have exited (tests: no zombies left)."""
        for process in self._children.values():
            process.poll()

    # --- inside -------------------------------------------------------------------------------
    def _record(self, name: str) -> Record:
        record = self.dir.load().processes.get(name)
        if record is None:
            raise StackError(f"{name} was never started here ({self.dir.state_file})")
        return record

    def _spawn(self, entry: Entry, env: Mapping[str, str]) -> Record:
        argv = self.argv(entry)
        log = self.dir.log(entry.name)
        handle, process = spawn(argv, log_path=log, env=env, cwd=self.cwd)
        self._children[handle.pid] = process
        self.say(f"started {entry.name} (pid {handle.pid})")
        return Record(entry.name, handle, self.ports[entry.name], argv, str(log))

    def _is_running(self, handle: Handle) -> bool:
        child = self._children.get(handle.pid)
        if child is not None and child.poll() is not None:
            return False
        return is_running(handle)

    def _bring_up(self, entries: Iterable[Entry], state: State, env: Mapping[str, str]) -> None:
        """Start `entries` and wait until all are ready. Raises StackError; the caller
        cleans up."""
        deadline = time.monotonic() + self.ready_timeout
        starting: dict[str, Entry] = {}
        for entry in entries:
            state.processes[entry.name] = self._spawn(entry, env)
            self.dir.save(state)
            starting[entry.name] = entry
        while starting:
            for name, entry in list(starting.items()):
                record = state.processes[name]
                if not self._is_running(record.handle):
                    child = self._children.get(record.handle.pid)
                    code = child.returncode if child is not None else None
                    raise StackError(
                        f"{name} exited{f' with code {code}' if code is not None else ''} "
                        "before it was ready",
                        tail(Path(record.log), LOG_TAIL_LINES),
                    )
                if http_status(record.port, entry.ready_path) == 200:
                    self.say(f"{name} ready")
                    del starting[name]
            if not starting:
                return
            if time.monotonic() > deadline:
                late = list(starting)
                raise StackError(
                    f"{', '.join(late)} not ready within {self.ready_timeout:.0f} s",
                    tail(self.dir.log(late[0]), LOG_TAIL_LINES),
                )
            time.sleep(POLL_S)

    def _stop(self, records: Iterable[Record]) -> list[int]:
        return stop_groups(
            [r.handle for r in records], timeout=self.stop_timeout, children=self._children
        )
