"""Entry points: `python -m activity serve [--roles …]` and `rebuild-read-models`.

Embedded (no CRM_POSTGRES_DSN / CRM_KAFKA_BOOTSTRAP): SQLite under CRM_DATA_DIR and the
in-process transport, every role in this one process. Production: one role per process,
e.g. `serve --roles api`, `serve --roles relay`, `serve --roles projector,consumer`.
"""

from __future__ import annotations

import argparse
import logging

from crm_platform.logs import configure_logging
from crm_platform.serving import add_serve_command, chosen_roles, serve
from crm_platform.settings import RuntimeSettings

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
    args = parser.parse_args(argv)
    configure_logging()
    if args.command == "serve":
        return serve(
            "activity", build, chosen_roles(parser, args.roles, ROLES), args.host, args.port
        )
    return rebuild_read_models(args.in_place)


if __name__ == "__main__":
    raise SystemExit(main())
