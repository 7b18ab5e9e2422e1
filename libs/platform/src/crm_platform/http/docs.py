"""The API documentation pages (`/docs`, `/redoc`) with every asset served by the app itself.

FastAPI's own pages load Swagger UI, ReDoc and a favicon from a CDN, so they are blank on a
network without internet access. The same files come installed with the `fastapi-offline`
wheel (swagger-ui-dist 5, ReDoc 2, FastAPI's favicon); only its files are used here, not its
app factory, so each service keeps creating its FastAPI app as before and calls
`install_api_docs(app)` once.

Every URL in the pages is relative to where the app is mounted (the request's `root_path`),
so `make run`'s `/activity/docs` finds its assets under `/activity/docs/assets/` just as a
service on its own port finds them under `/docs/assets/`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute, Route

__all__ = ["ASSETS", "ASSET_FILES", "install_api_docs"]

# A wheel is installed as files on disk (uv, pip), which StaticFiles needs; not a zip import.
ASSETS: Final = Path(str(files("fastapi_offline") / "static"))
ASSET_FILES: Final = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "redoc.standalone.js",
    "favicon.png",
)
ASSETS_PATH: Final = "/docs/assets"
# Swagger UI asks an online validator about the document unless told not to.
SWAGGER_PARAMETERS: Final = {"validatorUrl": None}
# ReDoc 2 draws Redocly's logo from their CDN, with no option to leave it out; the browser is
# told not to fetch it (ReDoc then hides the image), so the page asks nothing of the internet.
REDOC_CSP: Final = "img-src 'self' data:"


def install_api_docs(app: FastAPI) -> None:
    """Serve `app`'s Swagger UI (`app.docs_url`) and ReDoc (`app.redoc_url`) pages from the
    installed asset files, in place of FastAPI's pages that load them from a CDN.

    Call it once, after `FastAPI(...)`; an app created with `docs_url=None` (or
    `redoc_url=None`, or `openapi_url=None`) keeps that page switched off.
    """
    missing = [name for name in ASSET_FILES if not (ASSETS / name).is_file()]
    if missing:
        raise RuntimeError(f"fastapi-offline's asset files are missing: {missing}")
    if app.openapi_url is None:
        return
    openapi_url = app.openapi_url
    pages = {url for url in (app.docs_url, app.redoc_url) if url}
    if not pages:
        return
    app.router.routes[:] = [r for r in app.router.routes if not _is_page(r, pages)]
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="api-docs-assets")

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    if app.docs_url:
        redirect = app.swagger_ui_oauth2_redirect_url

        async def swagger_ui(request: Request) -> HTMLResponse:
            base = root(request)
            return get_swagger_ui_html(
                openapi_url=base + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{base}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{base}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{base}{ASSETS_PATH}/favicon.png",
                oauth2_redirect_url=base + redirect if redirect else None,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters={**SWAGGER_PARAMETERS, **(app.swagger_ui_parameters or {})},
            )

        app.add_route(app.docs_url, swagger_ui, include_in_schema=False)

    if app.redoc_url:

        async def redoc(request: Request) -> HTMLResponse:
            base = root(request)
            page = get_redoc_html(
                openapi_url=base + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{base}{ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{base}{ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )
            page.headers["Content-Security-Policy"] = REDOC_CSP
            return page

        app.add_route(app.redoc_url, redoc, include_in_schema=False)


def _is_page(route: BaseRoute, pages: set[str]) -> bool:
    return isinstance(route, Route) and route.path in pages
