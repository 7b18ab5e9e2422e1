"""The embedded system in this process, for the fuzz tier.

`python -m crm_embedded`'s own composition (crm_embedded.system.EmbeddedSystem): SQLite and
the in-process transport under one data directory, the iCalendar feed, dev authentication,
the three APIs under `/activity`, `/segmentation`, `/calendar-sync` on one root app, and,
when asked, every relay and consumer in supervised threads (so a customer created in
segmentation reaches activity's directory).

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

from crm_embedded.system import EmbeddedSystem as Embedded
from crm_platform.auth import Authenticator, AuthSettings
from crm_platform.settings import RuntimeSettings
from fastapi.testclient import TestClient

from tests.support.polling import wait_until

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
    """`python -m crm_embedded`'s system (crm_embedded.system), in this process."""

    def __init__(self, data_dir: Path, *, workers: bool) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        # Only what we pass: a developer's CRM_*/AUTH_* environment (PostgreSQL, Kafka, JWT)
        # must not leak in; dev auth is refused when PostgreSQL or Kafka is configured.
        settings = RuntimeSettings(
            _env_file=None, postgres_dsn=None, kafka_bootstrap=None, data_dir=data_dir
        )
        auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
        self.system = Embedded.build(settings, auth, HOST, PORT)
        self.workers = workers
        self.activity = self.system.activity
        self.root = self.system.root

    def start(self) -> None:
        if self.workers:
            self.system.supervisor.start()

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
        if self.workers:
            self.system.supervisor.stop()
        self.system.close()


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
