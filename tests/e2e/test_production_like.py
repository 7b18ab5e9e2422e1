"""The production-like mode (`make up`): each service as its own processes over the real
PostgreSQL and Kafka, callers with tokens from the local issuer, calendar-sync writing to
the Microsoft Graph fake.

- a customer and its meetings travel through all three services;
- consumer processes killed with SIGKILL mid-stream and started again: Outlook ends with
  exactly one event per activity, attainment counts are exact, later moves land;
- `python -m crm_devstack up | status | down` as a person runs them.

Each stack has schemas, consumer groups and topics of its own (CRM_SCHEMA_PREFIX,
CRM_TOPIC_PREFIX), so it starts from an empty history like a fresh installation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from crm_devstack import __main__ as devstack_cli
from crm_devstack.layout import NAMES, Ports
from crm_devstack.processes import Handle, is_running, port_is_free
from crm_devstack.stack import Stack

from tests.e2e.stack_fixture import (
    REPO,
    Caller,
    directory_knows,
    eventually,
    free_port_base,
    graph,
    ok,
    run,
    stack,
    stack_env,
    stack_prefix,
    unique_prefix,
)
from tests.fakes import GraphFake
from tests.fakes.graph_fake import start_of
from tests.support.schemas import drop_schemas

pytestmark = pytest.mark.timeout(300)

CUSTOMER_NAME = "Bager Hansen ApS"


__all__ = ["graph", "run", "stack", "stack_prefix"]  # module fixtures


# --------------------------------------------------------------------------- helpers


def register(manager: Caller, customer_id: str, owner: str, potential: str) -> dict[str, Any]:
    body = {"customer_id": customer_id, "name": CUSTOMER_NAME, "owner": owner}
    body["potential_dkk"] = potential
    created: dict[str, Any] = ok(manager.segmentation.post("/customers", json=body), 201)
    return created


def r8_gap(caller: Caller, customer_id: str) -> dict[str, Any] | None:
    """The customer's row in activity's R8 report: prioritized, with no future activity."""
    rows = ok(caller.activity.get("/reports/without-future-activity"), 200)
    return next((row for row in rows if row["customer_id"] == customer_id), None)


def plan_body(customer_id: str, owner: str, starts_at: datetime, subject: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "owner": owner,
        "type": "status_meeting",
        "channel": "phone",
        "subject": subject,
        "starts_at": starts_at.isoformat(),
        "ends_at": (starts_at + timedelta(minutes=30)).isoformat(),
    }


def post_retrying(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST, again after a lost optimistic race (409 with Retry-After) on the customer file."""
    for _ in range(20):
        response = http.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        if response.status_code == 409 and "retry-after" in response.headers:
            continue
        answer: dict[str, Any] = ok(response, 200, 201)
        return answer
    raise AssertionError(f"POST {path} lost its race 20 times")


def status_meetings(caller: Caller, customer_id: str) -> tuple[int, int] | None:
    """(actual, scheduled) status meetings of the customer this year, per segmentation."""
    response = caller.segmentation.get(f"/customers/{customer_id}/attainment")
    if response.status_code != 200:
        return None
    line = next(x for x in response.json()["lines"] if x["type"] == "status_meeting")
    return line["actual"], line["scheduled"]


def soon(hours: float) -> datetime:
    """A future time, on a whole minute, at least 2 h ahead (plans must be in the future)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now + timedelta(hours=2 + hours)


# --------------------------------------------------------------------------- make up's CLI
# First in the module: they start stacks of their own, before the module's stack runs.


def devstack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_devstack", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_cli_brings_every_process_up_ready_and_down_again(
    postgres_dsn: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix, base, state_dir = unique_prefix(), free_port_base(), tmp_path / "devstack"
    env = stack_env(postgres_dsn, kafka_bootstrap, prefix) | {
        "CRM_DEVSTACK_STATE_DIR": str(state_dir),
        "CRM_DEVSTACK_PORT_BASE": str(base),
    }
    try:
        up = devstack(env, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"{len(NAMES)} process(es) ready" in up.stdout
        addresses = json.loads((state_dir / "stack.json").read_text())
        assert addresses == {
            "activity": f"http://127.0.0.1:{base + 1}",
            "segmentation": f"http://127.0.0.1:{base + 2}",
            "calendar_sync": f"http://127.0.0.1:{base + 3}",
            "token_url": f"http://127.0.0.1:{base + 10}/token",
        }
        for service in ("activity", "segmentation", "calendar_sync"):
            assert httpx.get(f"{addresses[service]}/readyz", trust_env=False).status_code == 200
        token = httpx.post(
            addresses["token_url"],
            json={"username": "mia@example.dk", "roles": ["sales_manager"]},
            trust_env=False,
        ).json()["access_token"]
        customers = f"{addresses['segmentation']}/customers?owner=nobody.{prefix}@example.dk"
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(customers, headers=bearer, trust_env=False).status_code == 200
        assert httpx.get(customers, trust_env=False).status_code == 401

        status = devstack(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        for name in NAMES:
            assert name in status.stdout
        assert "dead" not in status.stdout
        assert "not ready" not in status.stdout

        again = devstack(env, "up")
        assert again.returncode == 0
        assert "already running" in again.stdout
        handles = [
            Handle.from_json(p)
            for p in json.loads((state_dir / "state.json").read_text())["processes"].values()
        ]
        assert len(handles) == len(NAMES)
        assert all(is_running(h) for h in handles)
    finally:
        down = devstack(env, "down")
        drop_schemas(postgres_dsn, prefix)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"stopped {len(NAMES)} process(es)" in down.stdout
    assert not any(is_running(h) for h in handles)
    assert not (state_dir / "stack.json").exists()
    # The issuer was up before the APIs failed: it is gone, like everything else.
    assert all(port_is_free(port) for port in Ports.from_base(base).by_name.values())
    after = devstack(env, "status")
    assert (after.returncode, after.stdout.strip()) == (3, "devstack: not running")
    assert devstack(env, "down").stdout.strip() == "devstack: nothing running"


SHIM = """#!/bin/sh
# Stands in for the interpreter: the issuer runs for real, every service fails at its start.
if [ "$2" = "crm_devstack.issuer" ]; then exec {python} "$@"; fi
echo "psycopg.OperationalError: connection refused (this service cannot start)" >&2
exit 3
"""


def test_a_process_that_cannot_start_fails_up_with_its_log_and_stops_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shim = tmp_path / "python"
    shim.write_text(SHIM.format(python=sys.executable))
    shim.chmod(0o755)
    env = stack_env("postgresql://crm@127.0.0.1:9/nowhere", "127.0.0.1:9", unique_prefix())
    stack = Stack(tmp_path / "devstack", Ports.free(), env, cwd=REPO, python=str(shim))

    assert devstack_cli.up(stack) == 2

    said = capsys.readouterr()
    assert "exited with code 3 before it was ready" in said.out
    assert "connection refused (this service cannot start)" in said.err  # the log's tail
    assert "stopped what this run had started" in said.out
    # The issuer was ready before the APIs failed; it is stopped like everything else.
    assert stack.dir.load().processes == {}
    assert not stack.dir.stack_file.exists()
    assert all(port_is_free(port) for port in stack.ports.by_name.values())


# --------------------------------------------------------------------------- scenarios


def test_a_customer_and_its_meetings_travel_through_all_three_services(
    stack: Stack, graph: GraphFake, run: str
) -> None:
    owner = f"anna.{run}@example.dk"
    customer = f"pl-{run}"
    mia = Caller(stack, f"mia.{run}@example.dk", ["sales_manager"])
    anna = Caller(stack, owner, ["consultant"])

    created = register(mia, customer, owner, "400000")
    assert (created["segment"], created["prioritized"]) == ("A", True)
    # crm.customers.v1 → activity's directory: it now knows the customer is prioritized and,
    # with nothing planned, the customer watch opens its R8 gap.
    eventually(
        stack,
        lambda: (r8_gap(anna, customer) or {}).get("segment") == "A",
        message="segment A in activity's R8 report",
        explain=["segmentation-relay", "activity-workers"],
    )
    planned = ok(
        anna.activity.post("/activities", json=plan_body(customer, owner, soon(0), "Status")), 201
    )
    refused = ok(
        anna.activity.post(f"/activities/{planned['id']}/cancel", json={"reason": "Syg"}), 409
    )
    assert refused["code"] == "R8"

    # activity → crm.activity.events.v1 → calendar-sync → the consultant's Outlook.
    def in_outlook() -> dict[str, Any] | None:
        events = graph.crm_events(owner).get(planned["id"], [])
        return events[0] if events else None

    event = eventually(
        stack,
        in_outlook,
        message="the planned meeting in the owner's Outlook",
        explain=["activity-relay", "calendar-sync-consumer"],
    )
    assert start_of(event) == datetime.fromisoformat(planned["starts_at"])
    eventually(
        stack,
        lambda: (in_outlook() or {}).get("subject") == f"Statusmøde: Status – {CUSTOMER_NAME}",
        message="the customer's name in the Outlook subject",
        explain=["calendar-sync-consumer"],
    )

    follow_up = plan_body(customer, owner, soon(24 * 7), "Status, næste kvartal")
    completed = ok(
        anna.activity.post(
            f"/activities/{planned['id']}/complete",
            json={
                "note": "Kampagnen kører godt; vil udvide til web",
                "next_step": "Send tilbud på sommerkampagne",
                "next_activity": follow_up,
            },
        ),
        200,
    )
    assert completed["status"] == "completed"
    next_id = completed["next_activity_id"]

    # activity → segmentation: one meeting held, one scheduled.
    eventually(
        stack,
        lambda: status_meetings(mia, customer) == (1, 1),
        message="1 held and 1 scheduled status meeting in attainment",
        explain=["segmentation-workers"],
    )

    def both_in_outlook() -> bool:
        events = graph.crm_events(owner)
        done = events.get(planned["id"], [{}])[0]
        return "Udført" in done.get("categories", []) and len(events.get(next_id, [])) == 1

    eventually(
        stack,
        both_in_outlook,
        message="the held meeting marked done and the next one in Outlook",
        explain=["calendar-sync-consumer"],
    )
    assert {k: len(v) for k, v in graph.crm_events(owner).items()} == {planned["id"]: 1, next_id: 1}
    for caller in (mia, anna):
        caller.close()


def test_consumers_killed_mid_stream_converge_without_loss_or_duplicates(
    stack: Stack, graph: GraphFake, run: str
) -> None:
    """SIGKILL calendar-sync's consumer and segmentation's workers while activities flow,
    start them again: every activity ends as exactly one Outlook event, attainment is exact,
    and moves after the restart land on the same events."""
    customers = [f"pl-{run}-{n}" for n in range(3)]
    per_customer, completed_per_customer = 50, 20
    owner = f"bo.{run}@example.dk"
    mia = Caller(stack, f"mia.{run}@example.dk", ["sales_manager"])
    bo = Caller(stack, owner, ["consultant"])
    for customer in customers:
        register(mia, customer, owner, "50000")  # segment C: completing needs no next one (R8)
    eventually(
        stack,
        lambda: all(directory_knows(bo, c) for c in customers),
        message="the customers in activity's directory",
        explain=["segmentation-relay", "activity-workers"],
    )

    planned: dict[str, list[str]] = {c: [] for c in customers}
    completions_started = threading.Event()

    def work(n: int, customer: str) -> None:
        # One thread per customer: plans on one customer file would race each other.
        for i in range(per_customer):
            starts = soon(n + i * 0.25)
            body = plan_body(customer, owner, starts, f"Status {n}.{i}")
            planned[customer].append(post_retrying(bo.activity, "/activities", body)["id"])
        completions_started.set()
        for activity_id in planned[customer][:completed_per_customer]:
            body = {"note": "Holdt; kunden er tilfreds", "next_step": "Ring i næste måned"}
            post_retrying(bo.activity, f"/activities/{activity_id}/complete", body)

    with ThreadPoolExecutor(len(customers)) as pool:
        flowing = [pool.submit(work, n, c) for n, c in enumerate(customers)]
        eventually(
            stack,
            lambda: len(graph.crm_events(owner)) >= 15 or any(f.done() for f in flowing),
            message="the first events in Outlook",
            explain=["calendar-sync-consumer"],
        )
        stack.kill("calendar-sync-consumer")
        completions_started.wait(timeout=120)
        stack.kill("segmentation-workers")
        for future in flowing:
            future.result()  # raises what a worker thread raised
    in_outlook_at_restart = len(graph.crm_events(owner))
    stack.start("calendar-sync-consumer", "segmentation-workers")

    everything = {a for ids in planned.values() for a in ids}
    assert len(everything) == per_customer * len(customers)
    assert in_outlook_at_restart < len(everything), "the kill came after the stream, not in it"

    done = {a for ids in planned.values() for a in ids[:completed_per_customer]}

    def converged() -> bool:
        events = graph.crm_events(owner)
        return (
            set(events) == everything
            and all(len(v) == 1 for v in events.values())
            and {a for a, v in events.items() if "Udført" in v[0]["categories"]} == done
        )

    eventually(
        stack,
        converged,
        timeout=150,
        message=f"exactly one Outlook event for each of {len(everything)} activities, "
        f"{len(done)} of them done",
        explain=["calendar-sync-consumer"],
    )
    events = graph.crm_events(owner)
    eventually(
        stack,
        lambda: all(
            status_meetings(mia, c)
            == (completed_per_customer, per_customer - completed_per_customer)
            for c in customers
        ),
        timeout=60,
        message="exact attainment counts for every customer",
        explain=["segmentation-workers"],
    )

    # After the restart: moves reach the very events created before and after the kill.
    moved: dict[str, datetime] = {}
    for customer in customers:
        for activity_id in planned[customer][-2:]:
            to = soon(24 * 14 + len(moved))
            body = {"starts_at": to.isoformat(), "reason": "no_answer"}
            post_retrying(bo.activity, f"/activities/{activity_id}/move", body)
            moved[activity_id] = to
    event_ids = {a: e[0]["id"] for a, e in events.items()}

    def moves_landed() -> bool:
        now = graph.crm_events(owner)
        return all(start_of(now[a][0]) == to for a, to in moved.items())

    eventually(
        stack,
        moves_landed,
        timeout=90,
        message="the moves in Outlook",
        explain=["calendar-sync-consumer"],
    )
    after = graph.crm_events(owner)
    assert {a: [e["id"] for e in v] for a, v in after.items()} == {
        a: [i] for a, i in event_ids.items()
    }
    counts = Counter(len(v) for v in after.values())
    assert counts == {1: len(everything)}
    for caller in (mia, bo):
        caller.close()
