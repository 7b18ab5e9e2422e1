"""Which processes make up the production-like stack, and on which ports.

One process per API, relay and group of workers, as in Kubernetes (deploy/k8s/base), with
the workers that Kubernetes runs as separate deployments folded together where one machine
gains nothing from splitting them. The issuer plays Entra ID.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Final

HOST: Final = "127.0.0.1"
# Where free ports are looked for: below the kernel's default ephemeral range (see Ports.free).
UNEPHEMERAL: Final = (20000, 32768)
DEFAULT_PORT_BASE: Final = 8000
ISSUER: Final = "issuer"
WEB: Final = "web"


@dataclass(frozen=True)
class Entry:
    """One process: `module` run with `roles` (None: the issuer), and how to tell it is up."""

    name: str
    module: str
    roles: str | None
    offset: int  # its port is the base plus this
    ready_path: str = "/readyz"  # every service process serves its ops endpoints on its port


# All start at once, as pods do: the processes of one service take turns creating their
# tables (a lock in `StoreLocation.creating`), so no start order is needed.
LAYOUT: Final = (
    Entry(ISSUER, "crm_devstack.issuer", None, 10, "/healthz"),
    Entry("activity-api", "activity", "api", 1),
    Entry("segmentation-api", "segmentation", "api", 2),
    Entry("calendar-sync-api", "calendar_sync", "api", 3),
    Entry(WEB, "crm_web", "web", 4),  # the sales cockpit (serve takes no roles)
    Entry("activity-relay", "activity", "relay", 11),
    Entry("activity-workers", "activity", "projector,consumer", 12),
    Entry("segmentation-relay", "segmentation", "relay", 13),
    Entry("segmentation-workers", "segmentation", "recompute,calendar,consumer", 14),
    Entry("calendar-sync-consumer", "calendar_sync", "consumer", 15),
)
NAMES: Final = tuple(entry.name for entry in LAYOUT)
BY_NAME: Final = {entry.name: entry for entry in LAYOUT}
# What `make demo` and people talk to: stack.json's keys and the API each one names.
APIS: Final = {
    "activity": "activity-api",
    "segmentation": "segmentation-api",
    "calendar_sync": "calendar-sync-api",
}


@dataclass(frozen=True)
class Ports:
    """A port for every process of the layout."""

    by_name: Mapping[str, int]

    def __post_init__(self) -> None:
        missing = set(NAMES) - set(self.by_name)
        if missing:
            raise ValueError(f"no port for {', '.join(sorted(missing))}")
        if len(set(self.by_name.values())) != len(self.by_name):
            raise ValueError(f"two processes on one port: {dict(self.by_name)}")

    def __getitem__(self, name: str) -> int:
        return self.by_name[name]

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.by_name[name]}"

    @classmethod
    def from_base(cls, base: int = DEFAULT_PORT_BASE) -> Ports:
        """8001–8003 for the APIs, 8010 for the issuer, 8011… for the workers (base 8000)."""
        if (
            not 0
            < base + min(e.offset for e in LAYOUT)
            <= base + max(e.offset for e in LAYOUT)
            < 65536
        ):
            raise ValueError(f"port base {base} puts ports outside 1–65535")
        return cls({entry.name: base + entry.offset for entry in LAYOUT})

    @classmethod
    def free(cls) -> Ports:
        """Ports free right now (for tests: several stacks side by side).

        Picked below the kernel's ephemeral range (32768–60999 by default): a port the
        kernel hands out itself could be taken by any outgoing connection (a Kafka or
        PostgreSQL client) between this pick and the process binding it. All sockets are
        held open until every port is picked, so no two are the same.
        """
        chance = random.Random()  # noqa: S311 (spreading picks, not secrets)
        with ExitStack() as held:
            picked: dict[str, int] = {}
            for name in NAMES:
                for _ in range(1000):
                    port = chance.randrange(*UNEPHEMERAL)
                    probe = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    try:
                        probe.bind((HOST, port))
                    except OSError:
                        continue
                    picked[name] = port
                    break
                else:
                    raise RuntimeError("no free port below the ephemeral range")
        return cls(picked)

    def to_json(self) -> dict[str, int]:
        return dict(self.by_name)
