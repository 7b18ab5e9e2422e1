"""A whole production-like stack for end-to-end tests, started by `make up`'s own code.

`running_stack` starts every process through `crm_devstack.Stack` (the code `make up` runs)
against the session's PostgreSQL and Kafka, under a schema and consumer-group prefix of its
own; `Caller` talks to the APIs with tokens from the stack's issuer; `eventually` waits like
`wait_until` and, when it gives up, shows the end of the logs that explain why.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from crm_devstack.layout import LAYOUT, NAMES, UNEPHEMERAL, Ports
from crm_devstack.processes import tail
from crm_devstack.stack import Stack, StackError

from tests.fakes import GraphFake
from tests.support.polling import wait_until
from tests.support.schemas import drop_schemas

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
# Shared by every test run, so only the first run compiles the services' imports.
PYCACHE = REPO / ".cache" / "devstack-tests" / "pycache"
# Settings of the machine running the tests must not leak into the stack's processes.
FOREIGN_PREFIXES = ("CRM_", "AUTH_", "GRAPH_", "CALENDAR_SYNC_")


def unique_prefix() -> str:
    """A prefix of one's own: schemas, consumer groups and topics nobody else uses."""
    return f"pl{uuid.uuid4().hex[:10]}_"


def stack_env(
    postgres_dsn: str, kafka_bootstrap: str, prefix: str, graph: GraphFake | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    env |= {
        "CRM_POSTGRES_DSN": postgres_dsn,
        "CRM_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CRM_SCHEMA_PREFIX": prefix,
        # Topics of its own: an installation on the shared broker starts from an empty
        # history, as a fresh production installation does, and leaves nothing for others.
        "CRM_TOPIC_PREFIX": f"{prefix}.",
        "PYTHONPYCACHEPREFIX": str(PYCACHE),
    }
    if graph is not None:
        env |= {
            "GRAPH_TENANT_ID": graph.tenant,
            "GRAPH_CLIENT_ID": graph.client_id,
            "GRAPH_CLIENT_SECRET": graph.client_secret,
            "GRAPH_BASE_URL": graph.graph_url,
            "GRAPH_TOKEN_URL": graph.token_url,
        }
    return env


@contextmanager
def running_stack(state_dir: Path, env: Mapping[str, str]) -> Iterator[Stack]:
    """Every process up and ready on free ports; all stopped afterwards, however it ends."""
    stack = Stack(state_dir, Ports.free(), env, cwd=REPO)
    try:
        try:
            stack.up()
        except StackError as error:
            pytest.fail(f"the stack did not start: {error}\n{error.log_tail}", pytrace=False)
        yield stack
    finally:
        stack.down()
        stack.close()


def free_port_base(span: int = max(e.offset for e in LAYOUT)) -> int:
    """A base whose every layout port (base+1 … base+span) is free right now, below the
    kernel's ephemeral range like `Ports.free` (outgoing connections cannot take them)."""
    chance = random.Random()
    for _ in range(200):
        base = chance.randrange(UNEPHEMERAL[0], UNEPHEMERAL[1] - span - 1)
        with ExitStack() as held:
            try:
                for offset in {e.offset for e in LAYOUT}:
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base
    raise RuntimeError("no run of free ports found")


class Caller:
    """Someone using the APIs with a token from the stack's issuer."""

    def __init__(self, stack: Stack, username: str, roles: Iterable[str]) -> None:
        addresses = stack.addresses()
        issued = httpx.post(
            addresses["token_url"],
            json={"username": username, "roles": list(roles)},
            timeout=10,
            trust_env=False,
        )
        issued.raise_for_status()
        headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        self.username = username

        def client(service: str) -> httpx.Client:
            return httpx.Client(
                base_url=addresses[service], headers=headers, timeout=30, trust_env=False
            )

        self.activity = client("activity")
        self.segmentation = client("segmentation")
        self.calendar_sync = client("calendar_sync")

    def close(self) -> None:
        for http in (self.activity, self.segmentation, self.calendar_sync):
            http.close()


def logs(stack: Stack, names: Iterable[str] = NAMES, lines: int = 15) -> str:
    return "\n".join(f"--- {n}.log\n{tail(stack.dir.log(n), lines)}" for n in names)


def eventually(
    stack: Stack,
    probe: Callable[[], T],
    *,
    message: str,
    timeout: float = 60.0,
    interval: float = 0.2,
    explain: Iterable[str] = NAMES,
) -> T:
    """`wait_until`, and when it times out the end of the logs of the processes in `explain`."""
    try:
        return wait_until(probe, timeout=timeout, interval=interval, message=message)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{logs(stack, explain)}") from None


def ok(response: httpx.Response, *statuses: int) -> Any:
    """The JSON of a response whose status is one of `statuses` (default 200/201)."""
    wanted = statuses or (200, 201)
    assert response.status_code in wanted, (
        f"{response.request.method} {response.request.url} → {response.status_code}: "
        f"{response.text[:500]}"
    )
    return response.json()


def directory_knows(caller: Caller, customer_id: str) -> bool:
    """Whether activity's customer directory has heard of the customer from segmentation.

    A plan that ends when it starts is refused either way, so nothing is stored: as
    `unknown_customer` while the directory does not know the customer, by R5 once it does.
    """
    starts = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = {
        "customer_id": customer_id,
        "owner": caller.username,
        "type": "contact",
        "channel": "phone",
        "subject": "Kender aktivitetstjenesten kunden?",
        "starts_at": starts,
        "ends_at": starts,
    }
    response = caller.activity.post("/activities", json=body)
    return response.status_code == 422 and response.json().get("code") == "R5"


# -- module fixtures: a test module that imports them (and lists them in `__all__`) gets a
# -- stack of its own, with a Graph fake for calendar-sync.


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphFake]:
    with GraphFake(seed=11) as fake:
        fake.faults.retry_after = "0.01"
        yield fake


@pytest.fixture(scope="module")
def stack_prefix() -> str:
    """The module's stack's schema, consumer-group and topic prefix."""
    return unique_prefix()


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str,
    kafka_bootstrap: str,
    graph: GraphFake,
    stack_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    env = stack_env(postgres_dsn, kafka_bootstrap, stack_prefix, graph)
    try:
        with running_stack(tmp_path_factory.mktemp("devstack"), env) as running:
            yield running
    finally:
        drop_schemas(postgres_dsn, stack_prefix)


@pytest.fixture
def run() -> str:
    """A fresh id for this test's customers and consultants."""
    return uuid.uuid4().hex[:10]
