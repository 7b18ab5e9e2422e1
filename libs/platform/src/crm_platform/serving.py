"""`python -m <service> serve --roles …`: one way for every service to run its processes.

A process runs the roles it is given: the `api` role serves the service's HTTP API; any other
process (a relay, the consumers) still serves `/healthz`, `/readyz` and `/metrics` on its port,
so probes and Prometheus treat every process alike. Auth settings are checked before anything
connects: a refused configuration touches nothing.

SIGTERM (or Ctrl-C) drains and stops a process within SHUTDOWN_BUDGET_S, as Kubernetes and
`make down` expect: the workers are told at once, in-flight requests get GRACEFUL_HTTP_S,
the workers what is left of DRAIN_S (a consumer commits what it handled and leaves its group,
so its partitions move at once), and a process still alive at the budget's end exits anyway.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Final, Protocol

import anyio.to_thread
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from crm_platform.auth import Authenticator, AuthSettings, ConfigurationError
from crm_platform.http.docs import install_api_docs
from crm_platform.logs import CorrelationId
from crm_platform.ops import Check, ops_router
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor, Worker

log = logging.getLogger(__name__)

API_ROLE = "api"

SHUTDOWN_BUDGET_S: Final = 9.0
GRACEFUL_HTTP_S: Final = 3
DRAIN_S: Final = 7.0
EXIT_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
# The embedded runner's share: its three services' routes share one pool of threads.
DEFAULT_REQUEST_THREADS: Final = 20


class Servable(Protocol):
    def api(self, auth: Authenticator, *, root_path: str = "") -> FastAPI: ...

    def checks(self) -> Mapping[str, Check]: ...

    def workers(self, roles: Iterable[str]) -> list[Worker]: ...

    def close(self) -> None: ...


class Build(Protocol):
    def __call__(self, settings: RuntimeSettings) -> Servable: ...


def add_serve_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    roles: Sequence[str],
    port: int,
) -> argparse.ArgumentParser:
    serve = commands.add_parser("serve", help="run the API and/or the workers")
    serve.add_argument(
        "--roles",
        default=",".join(roles),
        help=f"comma-separated, of {', '.join(roles)} (default: all)",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=port)
    return serve


def chosen_roles(parser: argparse.ArgumentParser, text: str, roles: Sequence[str]) -> list[str]:
    chosen = [role.strip() for role in text.split(",") if role.strip()]
    unknown = set(chosen) - set(roles)
    if unknown:
        parser.error(f"unknown role(s): {', '.join(sorted(unknown))}")
    return chosen


def serve(
    name: str,
    build: Build,
    roles: list[str],
    host: str,
    port: int,
    *,
    registry: Callable[[Servable], CollectorRegistry] | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; 0 on a clean stop, 2 when the settings are refused.

    `registry` gives a worker process's metrics (the API has its own); default: none.
    """
    settings = RuntimeSettings()
    try:
        auth = (
            Authenticator(
                AuthSettings(), production_settings_present=settings.production_settings_present
            )
            if API_ROLE in roles
            else None
        )
    except ConfigurationError as error:
        log.critical("cannot start: %s", error)
        return 2
    service = build(settings)
    supervisor = Supervisor(service.workers(roles))
    try:
        if auth is not None:
            web = service.api(auth)
        else:
            web = FastAPI(title=f"{name} workers ({', '.join(roles) or 'none'})")
            install_api_docs(web)
            metrics = registry(service) if registry is not None else CollectorRegistry()
            web.include_router(ops_router(metrics, service.checks()))
        web.add_middleware(CorrelationId)
    except BaseException:
        service.close()
        raise
    run_until_stopped(
        web, host, port, supervisor, service.close, request_threads=settings.pool_size
    )
    return 0


def run_until_stopped(
    web: FastAPI,
    host: str,
    port: int,
    supervisor: Supervisor,
    close: Callable[[], None],
    *,
    request_threads: int = DEFAULT_REQUEST_THREADS,
) -> None:
    """Serve `web` and run the workers until SIGTERM/SIGINT; then drain and `close` within
    SHUTDOWN_BUDGET_S of the signal. At most `request_threads` requests run their blocking
    part (the commands and reads) at once; the others wait their turn on the event loop."""
    shutdown = _Shutdown(supervisor.stop_event)
    config = uvicorn.Config(
        web, host=host, port=port, log_config=None, timeout_graceful_shutdown=GRACEFUL_HTTP_S
    )
    server = _Server(config, shutdown, request_threads)
    supervisor.start()
    try:
        server.run()
    finally:
        supervisor.stop(timeout=shutdown.remaining(DRAIN_S))
        close()


class _Shutdown:
    """What happens the moment an exit signal arrives: the workers are told to stop, and a
    watchdog ends the process should draining outlast the budget (a close that hangs on a
    server that is down must not keep a pod terminating, or `make down` waiting)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._since: float | None = None

    def begin(self) -> None:
        if self._since is not None:
            return
        self._since = time.monotonic()
        self._stop.set()
        threading.Thread(target=self._watchdog, name="shutdown-watchdog", daemon=True).start()

    def remaining(self, budget: float) -> float:
        """What is left of `budget` seconds counted from the signal (all of it if none came)."""
        if self._since is None:
            return budget
        return max(0.5, budget - (time.monotonic() - self._since))

    def _watchdog(self) -> None:
        time.sleep(SHUTDOWN_BUDGET_S)
        log.error("not stopped %.0fs after the signal; exiting anyway", SHUTDOWN_BUDGET_S)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(1)


class _Server(uvicorn.Server):
    """uvicorn's server, starting the shutdown as soon as a signal arrives.

    uvicorn raises the signal again once its own graceful shutdown is done; for SIGTERM that
    kills the process on the spot, before the workers have drained. Here the caller drains,
    closes and exits instead; a second signal meanwhile still ends the process at once.
    """

    def __init__(self, config: uvicorn.Config, shutdown: _Shutdown, threads: int) -> None:
        super().__init__(config)
        self._shutdown = shutdown
        self._threads = threads

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # The thread pool that runs FastAPI's plain `def` routes (anyio's, 40 by default).
        # More threads than PostgreSQL connections only wait for one, and meanwhile take
        # the interpreter lock from each other: 32 clients cost 15 % more CPU per request
        # than 8 (bench/RESULTS.md, command_path).
        anyio.to_thread.current_default_thread_limiter().total_tokens = self._threads
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._shutdown.begin()
        super().handle_exit(sig, frame)

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in EXIT_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
