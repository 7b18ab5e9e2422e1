"""Entry points: `python -m segmentation serve [--roles …]` and `import FILE`.

Embedded (no CRM_POSTGRES_DSN / CRM_KAFKA_BOOTSTRAP): SQLite under CRM_DATA_DIR and the
in-process transport, every role in this one process. Production: one role per process,
e.g. `serve --roles api`, `serve --roles relay`, `serve --roles recompute,calendar`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from crm_platform.eventstore import StoreLocation
from crm_platform.logs import configure_logging
from crm_platform.progress import Progress, data_rows
from crm_platform.serving import add_serve_command, chosen_roles, serve
from crm_platform.settings import RuntimeSettings

from segmentation.application import SegmentationApplication
from segmentation.imports import CustomerImport
from segmentation.service import ROLES, SERVICE_ACTOR, SegmentationService

log = logging.getLogger("segmentation")


def build(settings: RuntimeSettings) -> SegmentationService:
    return SegmentationService.build(settings, settings.transport("segmentation"))


def import_file(path: Path, batch_size: int) -> int:
    """Import a CSV file as the service itself (whoever runs the CLI has the database)."""
    settings = RuntimeSettings()
    store: StoreLocation = settings.store("segmentation")
    with store.creating():
        app = SegmentationApplication(store.env())
    progress = Progress(data_rows(str(path)))
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
    add_serve_command(commands, ROLES, port=8002)
    load = commands.add_parser("import", help="import customers from a CSV file")
    load.add_argument("file", type=Path)
    load.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    configure_logging()
    if args.command == "import":
        if not args.file.is_file():
            parser.error(f"no such file: {args.file}")
        return import_file(args.file, args.batch_size)
    return serve(
        "segmentation", build, chosen_roles(parser, args.roles, ROLES), args.host, args.port
    )


if __name__ == "__main__":
    raise SystemExit(main())
