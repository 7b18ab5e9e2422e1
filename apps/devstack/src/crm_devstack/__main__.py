"""`python -m crm_devstack up|down|status`: the production-like stack behind `make up`.

    up      start the token issuer and each service's processes (detached, logs under
            <state-dir>/logs), wait until every one is ready, write <state-dir>/stack.json
    down    stop them (SIGTERM, SIGKILL after a deadline); fine when nothing runs
    status  which run, which are dead; exit 0 when all run, 1 when some are dead, 3 when none

PostgreSQL and Kafka come from CRM_POSTGRES_DSN / CRM_KAFKA_BOOTSTRAP, else from the servers
`make infra` started. CRM_SCHEMA_PREFIX, CRM_POOL_SIZE, GRAPH_* and CALENDAR_SYNC_* pass
through to the services. Ports: CRM_DEVSTACK_PORT_BASE (default 8000: APIs on 8001–8003, the
issuer on 8010, workers from 8011); state: CRM_DEVSTACK_STATE_DIR (default .cache/devstack).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from crm_devstack.infra import InfraMissing, locate, repo_root
from crm_devstack.layout import APIS, DEFAULT_PORT_BASE, NAMES, Ports
from crm_devstack.stack import READY_TIMEOUT_S, ProcessStatus, Stack, StackError
from crm_devstack.state import StateDir, StateError

EXIT_DEAD = 1
EXIT_FAILED = 2
EXIT_NOT_RUNNING = 3


def say(line: str) -> None:
    print(f"devstack: {line}", flush=True)


def shown(path: Path) -> str:
    """A path relative to where the command runs, when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def table(statuses: Sequence[ProcessStatus]) -> str:
    rows = [("process", "pid", "state", "URL", "log")]
    for s in statuses:
        if not s.running:
            state = "dead" if s.pid is not None else "not started"
        elif s.ready is None:
            state = "running"
        else:
            state = "ready" if s.ready else "not ready"
        rows.append((s.name, str(s.pid or "-"), state, s.url, shown(s.log)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ("  ".join([*map(str.ljust, row[:-1], widths), row[-1]]) for row in rows)
    return "\n".join(lines)


def how_to_use(stack: Stack) -> str:
    token_url = stack.addresses()["token_url"]
    body = '{"username":"anna@example.dk","roles":["consultant"]}'
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
    docs = "  ".join(f"{stack.url(name)}/docs" for name in APIS.values())
    return "\n".join(
        [
            "A token (any username; roles consultant, sales_manager or service):",
            f"  TOKEN=$(curl -s -X POST {token_url} -H 'content-type: application/json' \\",
            f"    -d '{body}' | {extract})",
            f'  curl -s {stack.url("activity-api")}/activities -H "Authorization: Bearer $TOKEN"',
            f"API docs: {docs}",
            f"Addresses for `make demo`: {shown(stack.dir.stack_file)}",
            "Stop: uv run --frozen python -m crm_devstack down"
            "  (`make down` also stops PostgreSQL and Kafka)",
        ]
    )


def ports_for(state_dir: Path, base: int) -> Ports:
    """The ports a running stack was started with win over the ones asked for now."""
    recorded = StateDir(state_dir).load().ports
    if set(recorded) >= set(NAMES):
        return Ports({name: recorded[name] for name in NAMES})
    return Ports.from_base(base)


def up(stack: Stack) -> int:
    running = stack.running()
    if len(running) == len(NAMES):
        say(f"already running (state in {shown(stack.dir.path)})")
        print(table(stack.status()))
        print(how_to_use(stack))
        return 0
    if running:
        say(f"{len(NAMES) - len(running)} of {len(NAMES)} processes are not running; starting them")
    try:
        settings = stack.settings_summary()
    except StackError as error:
        say(str(error))
        return EXIT_FAILED
    prefix = settings["schema_prefix"] or "(none)"
    say(f"PostgreSQL {settings['postgres']}, Kafka {settings['kafka']}")
    say(f"schema and consumer-group prefix {prefix}; calendar: {settings['calendar']}")
    began = time.monotonic()
    try:
        started = stack.up()
    except StackError as error:
        say(f"FAILED: {error}")
        if error.log_tail:
            print(error.log_tail, file=sys.stderr)
        say("stopped what this run had started")
        return EXIT_FAILED
    say(f"{len(started)} process(es) ready in {time.monotonic() - began:.1f} s")
    print(table(stack.status()))
    print(how_to_use(stack))
    return 0


def down(stack: Stack) -> int:
    records = stack.dir.load().processes
    if not stack.running():
        stack.dir.clear()
        say("nothing running")
        return 0
    killed = stack.down()
    say(f"stopped {len(records)} process(es)")
    if killed:
        say(f"killed after {stack.stop_timeout:.0f} s: {', '.join(killed)}")
    return 0


def status(stack: Stack) -> int:
    statuses = stack.status()
    if not any(s.pid for s in statuses):
        say("not running")
        return EXIT_NOT_RUNNING
    print(table(statuses))
    if not all(s.running for s in statuses):
        dead = [s.name for s in statuses if not s.running]
        say(f"not running: {', '.join(dead)}; `up` starts them again")
        return EXIT_DEAD
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crm_devstack",
        description="The production-like stack on one machine (`make up`).",
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("CRM_DEVSTACK_STATE_DIR") or repo_root() / ".cache/devstack"),
        help="pids, logs, stack.json (env CRM_DEVSTACK_STATE_DIR; default .cache/devstack)",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=int(os.environ.get("CRM_DEVSTACK_PORT_BASE") or DEFAULT_PORT_BASE),
        help="APIs on base+1..3, issuer on base+10, workers from base+11 "
        f"(env CRM_DEVSTACK_PORT_BASE; default {DEFAULT_PORT_BASE})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=READY_TIMEOUT_S,
        help=f"seconds to wait for every process to be ready (default {READY_TIMEOUT_S:.0f})",
    )
    args = parser.parse_args(argv)
    try:
        ports = ports_for(args.state_dir, args.port_base)
    except (StateError, ValueError) as error:
        say(str(error))
        return EXIT_FAILED
    env = dict(os.environ)
    if args.command == "up":
        try:
            env |= locate(env).env()
        except InfraMissing as error:
            say(str(error))
            return EXIT_FAILED
    stack = Stack(args.state_dir, ports, env, cwd=repo_root(), ready_timeout=args.timeout, say=say)
    commands = {"up": up, "down": down, "status": status}
    try:
        return commands[args.command](stack)
    except StateError as error:
        say(str(error))
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
