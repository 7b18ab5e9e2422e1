"""Entry points: `python -m activity serve [--roles …]`, `rebuild-read-models` and
`import FILE` (going live: the previous CRM's held activities from CSV).

Embedded (no CRM_POSTGRES_DSN / CRM_KAFKA_BOOTSTRAP): SQLite under CRM_DATA_DIR and the
in-process transport, every role in this one process. Production: one role per process,
e.g. `serve --roles api`, `serve --roles relay`, `serve --roles projector,consumer`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from crm_platform.logs import configure_logging
from crm_platform.progress import Progress, data_rows
from crm_platform.serving import add_serve_command, chosen_roles, serve
from crm_platform.settings import RuntimeSettings

from activity.application import ActivityApplication
from activity.consumers import CustomerDirectory
from activity.customer_watch import SERVICE_ACTOR
from activity.imports import ActivityImport
from activity.projections import compare, rebuild
from activity.service import ROLES, ActivityService

log = logging.getLogger("activity")


def build(settings: RuntimeSettings) -> ActivityService:
    return ActivityService.build(settings, settings.transport("activity"))


def rebuild_read_models(in_place: bool) -> int:
    settings = RuntimeSettings()
    env = settings.store("activity").env()
    rebuilt = rebuild(env, in_place=in_place)
    log.info("rebuilt %s up to notification %s", rebuilt.name, rebuilt.position("activity"))
    if not in_place:
        from activity.projections import ActivityReadModel

        live = ActivityReadModel(env)
        differences = compare(live, rebuilt)
        for line in differences:
            print(line)
        print(f"{len(differences)} difference(s) between the live read model and a rebuild")
        return 1 if differences else 0
    return 0


def import_file(path: Path, batch_size: int) -> int:
    """Import a CSV file as the service itself (whoever runs the CLI has the database)."""
    settings = RuntimeSettings()
    store = settings.store("activity")
    with store.creating():
        directory = CustomerDirectory(store.env())
        app = ActivityApplication(store.env(), directory=directory)
    progress = Progress(data_rows(str(path)))
    try:
        with path.open(encoding="utf-8-sig", newline="") as lines:
            result = ActivityImport(
                app, SERVICE_ACTOR, batch_size=batch_size, progress=progress
            ).run(lines)
    finally:
        progress.close()
        app.close()
        directory.close()
    rejected = [
        {"line": p.line, "external_id": p.external_id, "reasons": p.reasons}
        for p in result.rejected
    ]
    summary = {"imported": result.imported, "unchanged": result.unchanged, "rejected": rejected}
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 1 if result.rejected else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m activity")
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_command(commands, ROLES, port=8001)
    again = commands.add_parser(
        "rebuild-read-models", help="fold the whole event log into the read models again"
    )
    again.add_argument(
        "--in-place", action="store_true", help="replace the live tables (stop the projector first)"
    )
    load = commands.add_parser(
        "import", help="import the previous CRM's held activities from a CSV file"
    )
    load.add_argument("file", type=Path)
    load.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    configure_logging()
    if args.command == "import":
        return import_file(args.file, args.batch_size)
    if args.command == "serve":
        return serve(
            "activity", build, chosen_roles(parser, args.roles, ROLES), args.host, args.port
        )
    return rebuild_read_models(args.in_place)


if __name__ == "__main__":
    raise SystemExit(main())
