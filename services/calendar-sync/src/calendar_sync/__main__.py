"""Entry point: `python -m calendar_sync serve [--roles api,consumer]`.

Embedded (no CRM_POSTGRES_DSN / CRM_KAFKA_BOOTSTRAP): SQLite under CRM_DATA_DIR and the
in-process transport. The calendar is Microsoft Graph when GRAPH_TENANT_ID, GRAPH_CLIENT_ID
and GRAPH_CLIENT_SECRET are set, else the iCalendar feed at /calendars/{owner}.ics.
A process without the `api` role still serves /healthz, /readyz and /metrics on its port.
"""

from __future__ import annotations

import argparse
import logging

from crm_platform.logs import configure_logging
from crm_platform.serving import Servable, add_serve_command, chosen_roles, serve
from crm_platform.settings import RuntimeSettings
from prometheus_client import CollectorRegistry

from calendar_sync.service import ROLES, CalendarSyncService
from calendar_sync.settings import CalendarSyncSettings, GraphSettings

log = logging.getLogger("calendar_sync")


def build(settings: RuntimeSettings) -> CalendarSyncService:
    service = CalendarSyncService.build(
        settings,
        settings.transport("calendar-sync"),
        CalendarSyncSettings(),
        graph=GraphSettings(),
    )
    log.info("calendar: %s", service.calendar.kind)
    return service


def worker_metrics(service: Servable) -> CollectorRegistry:
    assert isinstance(service, CalendarSyncService)
    return service.metrics.registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calendar_sync")
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_command(commands, ROLES, port=8003)
    args = parser.parse_args(argv)
    configure_logging()
    roles = chosen_roles(parser, args.roles, ROLES)
    return serve("calendar-sync", build, roles, args.host, args.port, registry=worker_metrics)


if __name__ == "__main__":
    raise SystemExit(main())
