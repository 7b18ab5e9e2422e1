"""`python -m crm_embedded`: all three services in one process, on one port.

SQLite files and the in-process transport under CRM_DATA_DIR, the iCalendar feed as the
calendar, every API under its prefix (`/activity`, `/segmentation`, `/calendar-sync`, each
with its own `/docs`), and every relay and consumer in supervised threads. One transport
object is shared, so a save in one service wakes the consumers of the others at once.
The feed URLs calendar-sync hands out point at this server (`/calendar-sync` on its host and
port) unless CALENDAR_SYNC_FEED_BASE_URL says otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging

from activity.service import ROLES as ACTIVITY_ROLES
from activity.service import ActivityService
from calendar_sync.service import ROLES as CALENDAR_ROLES
from calendar_sync.service import CalendarSyncService
from calendar_sync.settings import CalendarSyncSettings, GraphSettings
from crm_platform.auth import Authenticator, AuthSettings, ConfigurationError
from crm_platform.http import install_error_handlers
from crm_platform.logs import CorrelationId, configure_logging
from crm_platform.serving import run_until_stopped
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor
from fastapi import FastAPI
from segmentation.service import ROLES as SEGMENTATION_ROLES
from segmentation.service import SegmentationService

log = logging.getLogger("crm_embedded")

CALENDAR_PREFIX = "/calendar-sync"


def calendar_settings(host: str, port: int) -> CalendarSyncSettings:
    """calendar-sync's settings, its feed reached through this server unless configured.

    The service's own default is where it listens on its own (`make up`, :8003); embedded it
    lives under a prefix of this server, and nothing listens on 8003.
    """
    configured = CalendarSyncSettings()
    if "feed_base_url" in configured.model_fields_set:
        return configured
    return configured.model_copy(
        update={"feed_base_url": f"{server_url(host, port)}{CALENDAR_PREFIX}"}
    )


def server_url(host: str, port: int) -> str:
    """How a client on this machine reaches a server bound to `host`."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:  # bound to every interface: loopback is one of them
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}"


def serve(host: str, port: int) -> None:
    settings = RuntimeSettings()
    auth = Authenticator(
        AuthSettings(), production_settings_present=settings.production_settings_present
    )
    transport = settings.transport("embedded")
    activity = ActivityService.build(settings, transport)
    segmentation = SegmentationService.build(settings, transport)
    calendar = CalendarSyncService.build(
        settings, transport, calendar_settings(host, port), graph=GraphSettings()
    )
    supervisor = Supervisor(
        [
            *activity.workers(ACTIVITY_ROLES),
            *segmentation.workers(SEGMENTATION_ROLES),
            *calendar.workers(CALENDAR_ROLES),
        ]
    )
    root = FastAPI(title="CRM activity backbone", docs_url=None, redoc_url=None, openapi_url=None)
    # Paths outside the three services answer like the services do (problem+json, full Allow).
    install_error_handlers(root)
    root.mount("/activity", activity.api(auth))
    root.mount("/segmentation", segmentation.api(auth))
    root.mount(CALENDAR_PREFIX, calendar.api(auth))

    @root.get("/")
    def index() -> dict[str, object]:
        return {
            "services": {
                name: {"api": f"/{name}", "docs": f"/{name}/docs"}
                for name in ("activity", "segmentation", "calendar-sync")
            }
        }

    root.add_middleware(CorrelationId)
    base = server_url(host, port)
    print(
        f"CRM activity backbone on {base}\n"
        f"  activity      {base}/activity/docs\n"
        f"  segmentation  {base}/segmentation/docs\n"
        f"  calendar-sync {base}/calendar-sync/docs  (feeds: /calendar-sync/calendars/"
        "<owner>.ics)\n"
        "  dev auth: send X-Dev-User: <user id> and X-Dev-Roles: consultant|sales_manager\n"
        f"  data in {settings.data_dir.resolve()}; Ctrl-C stops",
        flush=True,
    )

    def close() -> None:
        for service in (calendar, segmentation, activity):
            service.close()

    run_until_stopped(root, host, port, supervisor, close)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_embedded")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        serve(args.host, args.port)
    except ConfigurationError as error:
        log.critical("cannot start: %s", error)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
