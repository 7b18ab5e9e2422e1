"""Entry point: `python -m calendar_sync serve [--roles api,consumer]`.

Embedded (no CRM_POSTGRES_DSN / CRM_KAFKA_BOOTSTRAP): SQLite under CRM_DATA_DIR and the
in-process transport. The calendar is Microsoft Graph when GRAPH_TENANT_ID, GRAPH_CLIENT_ID
and GRAPH_CLIENT_SECRET are set, else the iCalendar feed at /calendars/{owner}.ics.
A process without the `api` role still serves /healthz, /readyz and /metrics on its port.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn
from crm_platform.auth import Authenticator, AuthSettings, ConfigurationError
from crm_platform.logs import CorrelationId, configure_logging
from crm_platform.ops import ops_router
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor
from fastapi import FastAPI

from calendar_sync.service import ROLES, CalendarSyncService
from calendar_sync.settings import CalendarSyncSettings, GraphSettings

log = logging.getLogger("calendar_sync")


def serve(roles: list[str], host: str, port: int) -> None:
    settings = RuntimeSettings()
    # Checked before anything connects: a refused auth configuration touches nothing.
    auth = (
        Authenticator(
            AuthSettings(), production_settings_present=settings.production_settings_present
        )
        if "api" in roles
        else None
    )
    service = CalendarSyncService.build(
        settings,
        settings.transport("calendar-sync"),
        CalendarSyncSettings(),
        graph=GraphSettings(),
    )
    log.info("calendar: %s", service.calendar.kind)
    supervisor = Supervisor(service.workers(roles))
    try:
        if auth is not None:
            web = service.api(auth)
        else:
            web = FastAPI(title="calendar-sync workers")
            web.include_router(ops_router(service.metrics.registry, service.checks()))
        web.add_middleware(CorrelationId)
        supervisor.start()
        uvicorn.run(web, host=host, port=port, log_config=None)
    finally:
        supervisor.stop()
        service.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calendar_sync")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the API and/or the consumers")
    run.add_argument(
        "--roles",
        default=",".join(ROLES),
        help=f"comma-separated, of {', '.join(ROLES)} (default: all)",
    )
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8003)
    args = parser.parse_args(argv)
    configure_logging()
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    unknown = set(roles) - set(ROLES)
    if unknown:
        parser.error(f"unknown role(s): {', '.join(sorted(unknown))}")
    try:
        serve(roles, args.host, args.port)
    except ConfigurationError as error:
        log.critical("cannot start: %s", error)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
