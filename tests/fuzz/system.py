"""The embedded system in this process, for the fuzz tier.

The same composition as `python -m crm_embedded` (apps/embedded/src/crm_embedded/__main__.py):
SQLite and the in-process transport under one data directory, the iCalendar feed, dev
authentication, the three APIs mounted under `/activity`, `/segmentation`, `/calendar-sync` on
one root app with the correlation-id middleware, and, when asked, every relay and consumer in
supervised threads (so a customer created in segmentation reaches activity's directory).

Schemathesis binds each schema to an ASGI app when the schema is loaded, at import time, which
is before pytest hands out temporary directories. `Switch` is that app: it forwards every
request to whatever system is current, first a throwaway one that only serves the OpenAPI
documents, then the session's one in the pytest tmp dir (see conftest.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from activity.service import ROLES as ACTIVITY_ROLES
from activity.service import ActivityService
from calendar_sync.service import ROLES as CALENDAR_ROLES
from calendar_sync.service import CalendarSyncService
from calendar_sync.settings import CalendarSyncSettings
from crm_platform.auth import Authenticator, AuthSettings
from crm_platform.logs import CorrelationId
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor
from fastapi import FastAPI
from fastapi.testclient import TestClient
from segmentation.service import ROLES as SEGMENTATION_ROLES
from segmentation.service import SegmentationService

from tests.support.polling import wait_until

try:  # the root answers unknown paths like the services (problem+json, full Allow)
    from crm_platform.http import install_error_handlers
except ImportError:  # not yet everywhere
    install_error_handlers = None
try:  # calendar-sync's feed URLs through the embedded server's prefix
    from crm_embedded.__main__ import calendar_settings
except ImportError:
    calendar_settings = None

# Where `make run` listens; only the calendar feed URLs it hands out name it.
HOST, PORT = "127.0.0.1", 8000

PREFIXES = ("activity", "segmentation", "calendar-sync")
# Who every fuzzed request is: a manager may do everything a consultant may and more, so
# operations get past authentication and authorization to the code behind them.
USER = "anna@example.dk"
ROLES = "sales_manager"
AUTH_HEADERS = {"X-Dev-User": USER, "X-Dev-Roles": ROLES}
# Customers the session creates before fuzzing (segmentation → the transport → activity's
# directory), so that generated activities can name a customer activity knows: one per
# segment A, B, C, D (potential in DKK), all owned by USER.
CUSTOMERS = {
    "fuzz-a": "2000000",
    "fuzz-b": "500000",
    "fuzz-c": "100000",
    "fuzz-d": "1000",
}


class EmbeddedSystem:
    """The three services and the root app of `python -m crm_embedded`, in this process."""

    def __init__(self, data_dir: Path, *, workers: bool) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        # Only what we pass: a developer's CRM_*/AUTH_* environment (PostgreSQL, Kafka, JWT)
        # must not leak in; dev auth is refused when PostgreSQL or Kafka is configured.
        self.settings = RuntimeSettings(
            _env_file=None, postgres_dsn=None, kafka_bootstrap=None, data_dir=data_dir
        )
        self.auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
        self.transport = self.settings.transport("embedded")
        self.activity = ActivityService.build(self.settings, self.transport)
        self.segmentation = SegmentationService.build(self.settings, self.transport)
        options = calendar_settings(HOST, PORT) if calendar_settings else CalendarSyncSettings()
        self.calendar = CalendarSyncService.build(self.settings, self.transport, options)
        self.supervisor: Supervisor | None = None
        if workers:
            self.supervisor = Supervisor(
                [
                    *self.activity.workers(ACTIVITY_ROLES),
                    *self.segmentation.workers(SEGMENTATION_ROLES),
                    *self.calendar.workers(CALENDAR_ROLES),
                ]
            )
        self.root = self._root()

    def _root(self) -> FastAPI:
        # Keep in step with crm_embedded.__main__.serve.
        root = FastAPI(
            title="CRM activity backbone", docs_url=None, redoc_url=None, openapi_url=None
        )
        if install_error_handlers is not None:
            install_error_handlers(root)
        root.mount("/activity", self.activity.api(self.auth))
        root.mount("/segmentation", self.segmentation.api(self.auth))
        root.mount("/calendar-sync", self.calendar.api(self.auth))

        @root.get("/")
        def index() -> dict[str, object]:
            return {
                "services": {
                    name: {"api": f"/{name}", "docs": f"/{name}/docs"} for name in PREFIXES
                }
            }

        root.add_middleware(CorrelationId)
        return root

    def start(self) -> None:
        if self.supervisor is not None:
            self.supervisor.start()

    def seed(self) -> None:
        """Create CUSTOMERS through the API and wait until activity's directory has them."""
        with TestClient(self.root) as client:
            for customer_id, potential in CUSTOMERS.items():
                response = client.post(
                    "/segmentation/customers",
                    headers=AUTH_HEADERS,
                    json={
                        "customer_id": customer_id,
                        "name": f"Fuzz {customer_id}",
                        "owner": USER,
                        "potential_dkk": potential,
                    },
                )
                assert response.status_code in (200, 201), response.text
        wait_until(
            lambda: all(self.activity.directory.get(c) for c in CUSTOMERS),
            timeout=60,
            message="activity's customer directory to learn the seeded customers",
        )

    def close(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        for service in (self.calendar, self.segmentation, self.activity):
            service.close()


class Switch:
    """An ASGI app that forwards to `target`, which the fixtures may replace."""

    def __init__(self) -> None:
        self.target: Any = None
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests += 1
        if self.target is None:
            raise RuntimeError("no embedded system is running (fixture `embedded` not active)")
        await self.target(scope, receive, send)


SWITCH = Switch()


@contextmanager
def documents_only() -> Iterator[EmbeddedSystem]:
    """A system without workers in a temporary directory, for loading the OpenAPI documents."""
    with tempfile.TemporaryDirectory(prefix="crm-fuzz-docs-") as tmp:
        system = EmbeddedSystem(Path(tmp), workers=False)
        try:
            yield system
        finally:
            system.close()
