"""`python -m crm_embedded`: all three services in one process, on one port.

What runs is `crm_embedded.system.EmbeddedSystem`; this module serves it until stopped.
"""

from __future__ import annotations

import argparse
import logging

from crm_platform.auth import Authenticator, AuthSettings, ConfigurationError
from crm_platform.logs import configure_logging
from crm_platform.serving import run_until_stopped
from crm_platform.settings import RuntimeSettings

from crm_embedded.system import EmbeddedSystem, server_url

log = logging.getLogger("crm_embedded")


def serve(host: str, port: int) -> None:
    settings = RuntimeSettings()
    auth = Authenticator(
        AuthSettings(), production_settings_present=settings.production_settings_present
    )
    system = EmbeddedSystem.build(settings, auth, host, port, cockpit=True)
    base = server_url(host, port)
    print(
        f"CRM activity backbone on {base}\n"
        f"  sales cockpit {base}/  (index of the APIs: {base}/api)\n"
        f"  activity      {base}/activity/docs\n"
        f"  segmentation  {base}/segmentation/docs\n"
        f"  calendar-sync {base}/calendar-sync/docs  (feeds: /calendar-sync/calendars/"
        "<owner>.ics)\n"
        "  dev auth: send X-Dev-User: <user id> and X-Dev-Roles: consultant|sales_manager\n"
        f"  data in {settings.data_dir.resolve()}; Ctrl-C stops",
        flush=True,
    )
    run_until_stopped(system.root, host, port, system.supervisor, system.close)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_embedded")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        serve(args.host, args.port)
    except ConfigurationError as error:
        log.critical("cannot start: %s", error)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
