"""Entry points: `python -m segmentation serve [--roles …]` and `import FILE`.

Embedded (no CRM_POSTGRES_DSN / CRM_KAFKA_BOOTSTRAP): SQLite under CRM_DATA_DIR and the
in-process transport, every role in this one process. Production: one role per process,
e.g. `serve --roles api`, `serve --roles relay`, `serve --roles recompute,calendar`.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

import uvicorn
from crm_platform.auth import Authenticator, AuthSettings, ConfigurationError
from crm_platform.eventstore import StoreLocation
from crm_platform.logs import CorrelationId, configure_logging
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor

from segmentation.application import SegmentationApplication
from segmentation.imports import CustomerImport
from segmentation.service import ROLES, SERVICE_ACTOR, SegmentationService

log = logging.getLogger("segmentation")


def serve(roles: list[str], host: str, port: int) -> None:
    settings = RuntimeSettings()
    # Checked before anything connects: dev auth with production settings must not start.
    auth = (
        Authenticator(
            AuthSettings(), production_settings_present=settings.production_settings_present
        )
        if "api" in roles
        else None
    )
    service = SegmentationService.build(settings, settings.transport("segmentation"))
    supervisor = Supervisor(service.workers(roles))
    supervisor.start()
    try:
        if auth is not None:
            web = service.api(auth)
            web.add_middleware(CorrelationId)
            uvicorn.run(web, host=host, port=port, log_config=None)
        else:
            stopped = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stopped.set())
            stopped.wait()
    finally:
        supervisor.stop()
        service.close()


class Progress:
    """A progress line on stderr (rows done, of how many, rate), at most ~5 times a second."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self._start = self._shown = time.monotonic()

    def __call__(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if now - self._shown >= 0.2 or self.done >= self.total:
            self._shown = now
            rate = self.done / max(now - self._start, 1e-6)
            share = 100 * self.done / self.total if self.total else 100.0
            line = f"\rimported {self.done}/{self.total} rows ({share:.0f}%, {rate:.0f}/s)"
            sys.stderr.write(line)
            sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def import_file(path: Path, batch_size: int) -> int:
    """Import a CSV file as the service itself (whoever runs the CLI has the database)."""
    settings = RuntimeSettings()
    store: StoreLocation = settings.store("segmentation")
    with store.creating():
        app = SegmentationApplication(store.env())
    # A first pass counts the rows for the progress bar; it streams too, so costs only I/O.
    with path.open(encoding="utf-8-sig", newline="") as counting:
        total = max(sum(1 for _ in counting) - 1, 0)
    progress = Progress(total)
    try:
        with path.open(encoding="utf-8-sig", newline="") as lines:
            result = CustomerImport(
                app, SERVICE_ACTOR, batch_size=batch_size, progress=progress
            ).run(lines)
    finally:
        progress.close()
        app.close()
    print(
        json.dumps(
            {
                "imported": result.imported,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "rejected": [
                    {"line": p.line, "customer_id": p.customer_id, "reasons": p.reasons}
                    for p in result.rejected
                ],
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    return 1 if result.rejected else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segmentation")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the API and/or workers")
    run.add_argument(
        "--roles",
        default=",".join(ROLES),
        help=f"comma-separated, of {', '.join(ROLES)} (default: all)",
    )
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8002)
    load = commands.add_parser("import", help="import customers from a CSV file")
    load.add_argument("file", type=Path)
    load.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    configure_logging()
    if args.command == "import":
        if not args.file.is_file():
            parser.error(f"no such file: {args.file}")
        return import_file(args.file, args.batch_size)
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
