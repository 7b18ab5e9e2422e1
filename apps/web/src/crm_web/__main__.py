"""`python -m crm_web serve --host H --port P`: the cockpit on its own (`make up`, the image).

Settings come from the environment (`CRM_WEB_*`, see `crm_web.settings`); `make run` does not
use this, it mounts the app beside the APIs in one process.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn
from pydantic import ValidationError

from crm_web.app import create_app
from crm_web.settings import WebSettings

log = logging.getLogger("crm_web")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_web")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the cockpit")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = WebSettings()
    except ValidationError as error:
        log.critical("cannot start: %s", error)
        return 2
    log.info(
        "sign-in: %s; APIs: %s, %s, %s",
        settings.sign_in.value,
        settings.activity_url,
        settings.segmentation_url,
        settings.calendar_url,
    )
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, proxy_headers=True, log_level="info"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
