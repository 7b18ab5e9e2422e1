"""`python -m <service> serve --roles …`: one way for every service to run its processes.

A process runs the roles it is given: the `api` role serves the service's HTTP API; any other
process (a relay, the consumers) still serves `/healthz`, `/readyz` and `/metrics` on its port,
so probes and Prometheus treat every process alike. Auth settings are checked before anything
connects: a refused configuration touches nothing.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from crm_platform.auth import Authenticator, AuthSettings, ConfigurationError
from crm_platform.logs import CorrelationId
from crm_platform.ops import Check, ops_router
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor, Worker

log = logging.getLogger(__name__)

API_ROLE = "api"


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
            metrics = registry(service) if registry is not None else CollectorRegistry()
            web.include_router(ops_router(metrics, service.checks()))
        web.add_middleware(CorrelationId)
        supervisor.start()
        uvicorn.run(web, host=host, port=port, log_config=None)
    finally:
        supervisor.stop()
        service.close()
    return 0
