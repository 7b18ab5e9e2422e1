"""What `make run` runs: the three services, their workers and one root app over them all.

SQLite files and the in-process transport under CRM_DATA_DIR, the iCalendar feed as the
calendar, every API under its prefix (`/activity`, `/segmentation`, `/calendar-sync`, each
with its own `/docs`), and every relay and consumer in supervised threads. One transport
object is shared, so a save in one service wakes the consumers of the others at once.
The feed URLs calendar-sync hands out point at this server (`/calendar-sync` on its host and
port) unless CALENDAR_SYNC_FEED_BASE_URL says otherwise. The fuzz tier builds the same.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from activity.service import ROLES as ACTIVITY_ROLES
from activity.service import ActivityService
from calendar_sync.service import ROLES as CALENDAR_ROLES
from calendar_sync.service import CalendarSyncService
from calendar_sync.settings import CalendarSyncSettings, GraphSettings
from crm_platform.auth import Authenticator, AuthMode
from crm_platform.http import install_error_handlers
from crm_platform.logs import CorrelationId
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor
from crm_web.app import create_app as create_cockpit
from crm_web.settings import SignIn, WebSettings
from fastapi import FastAPI
from segmentation.service import ROLES as SEGMENTATION_ROLES
from segmentation.service import SegmentationService

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


@dataclass
class EmbeddedSystem:
    """The three services, their workers and the one root app that serves them all."""

    settings: RuntimeSettings
    activity: ActivityService
    segmentation: SegmentationService
    calendar: CalendarSyncService
    supervisor: Supervisor
    root: FastAPI

    @classmethod
    def build(
        cls,
        settings: RuntimeSettings,
        auth: Authenticator,
        host: str,
        port: int,
        *,
        cockpit: bool = False,
    ) -> EmbeddedSystem:
        """Everything `make run` runs; nothing starts until `supervisor.start()` and a server.

        `cockpit=True` (what `make run` serves) mounts the sales cockpit at `/`: it calls the
        APIs of this same server over HTTP, as it would call them anywhere else.
        """
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
        root = root_app(
            {
                "/activity": activity.api(auth),
                "/segmentation": segmentation.api(auth),
                CALENDAR_PREFIX: calendar.api(auth),
            },
            cockpit_app(auth, host, port) if cockpit else None,
        )
        return cls(settings, activity, segmentation, calendar, supervisor, root)

    def close(self) -> None:
        for service in (self.calendar, self.segmentation, self.activity):
            service.close()


def cockpit_app(auth: Authenticator, host: str, port: int) -> FastAPI:
    """The cockpit over this server's APIs; dev sign-in when the APIs take dev identities."""
    base = server_url(host, port)
    dev = auth.settings.mode is AuthMode.DEV
    return create_cockpit(
        WebSettings(
            sign_in=SignIn.DEV if dev else SignIn.PROXY,
            activity_url=f"{base}/activity",
            segmentation_url=f"{base}/segmentation",
            calendar_url=f"{base}{CALENDAR_PREFIX}",
        )
    )


def root_app(apis: Mapping[str, FastAPI], cockpit: FastAPI | None = None) -> FastAPI:
    """The services' APIs under their prefixes, and an index of them at `/`.

    With the cockpit, the cockpit is at `/` (mounted last, so every API prefix matches
    first) and the index moves to `/api`.
    """
    root = FastAPI(title="CRM activity backbone", docs_url=None, redoc_url=None, openapi_url=None)
    # Paths outside the three services answer like the services do (problem+json, full Allow).
    install_error_handlers(root)
    for prefix, api in apis.items():
        root.mount(prefix, api)

    @root.get("/" if cockpit is None else "/api")
    def index() -> dict[str, object]:
        return {
            "services": {
                prefix.lstrip("/"): {"api": prefix, "docs": f"{prefix}/docs"} for prefix in apis
            }
        }

    if cockpit is not None:
        root.mount("/", cockpit)
    root.add_middleware(CorrelationId)
    return root
