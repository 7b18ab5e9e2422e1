"""Entry points: `python -m activity serve [--roles …]` and `rebuild-read-models`.

Embedded (no CRM_POSTGRES_DSN / CRM_KAFKA_BOOTSTRAP): SQLite under CRM_DATA_DIR and the
in-process transport, every role in this one process. Production: one role per process,
e.g. `serve --roles api`, `serve --roles relay`, `serve --roles projector,consumer`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

import uvicorn
from crm_platform.auth import Authenticator, AuthSettings, ConfigurationError
from crm_platform.logs import CorrelationId, configure_logging
from crm_platform.settings import RuntimeSettings
from crm_platform.workers import Supervisor

from activity.projections import compare, rebuild
from activity.service import ROLES, ActivityService

log = logging.getLogger("activity")


def serve(roles: list[str], host: str, port: int) -> None:
    settings = RuntimeSettings()
    service = ActivityService.build(settings, settings.transport("activity"))
    supervisor = Supervisor(service.workers(roles))
    supervisor.start()
    try:
        if "api" in roles:
            auth = Authenticator(
                AuthSettings(), production_settings_present=settings.production_settings_present
            )
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
    run = commands.add_parser("serve", help="run the API and/or workers")
    run.add_argument(
        "--roles",
        default=",".join(ROLES),
        help=f"comma-separated, of {', '.join(ROLES)} (default: all)",
    )
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8001)
    again = commands.add_parser(
        "rebuild-read-models", help="fold the whole event log into the read models again"
    )
    again.add_argument(
        "--in-place", action="store_true", help="replace the live tables (stop the projector first)"
    )
    args = parser.parse_args(argv)
    configure_logging()
    if args.command == "serve":
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
    return rebuild_read_models(args.in_place)


if __name__ == "__main__":
    raise SystemExit(main())
