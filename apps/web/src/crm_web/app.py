"""The cockpit's FastAPI app: pages, static assets, sign-in and the error pages.

`create_app(settings)` is all a server needs (`python -m crm_web serve`, `make up`), and what
`make run` mounts at `/` beside the three APIs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Final
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_web import danish
from crm_web.backend import ApiProblem, Backend
from crm_web.identity import NotSignedIn, Refused
from crm_web.importer import Imports
from crm_web.pages import activities, customers, imports, signin, team, week
from crm_web.render import page, templates
from crm_web.settings import SignIn, WebSettings

HERE: Final = Path(__file__).parent
# Everything the pages load comes from this app: no CDN, no inline script.
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
)
SECURITY_HEADERS: Final = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


def create_app(settings: WebSettings | None = None, backend: Backend | None = None) -> FastAPI:
    chosen = settings or WebSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.backend.close()

    app = FastAPI(
        title="Salgscockpit",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.settings = chosen
    app.state.backend = backend or Backend(chosen)
    app.state.templates = templates()
    app.state.imports = Imports()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (signin, week, activities, customers, team, imports):
        app.include_router(module.router)

    @app.get("/healthz", include_in_schema=False)
    @app.get("/readyz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    install_error_pages(app)
    app.add_middleware(Guard)
    return app


class Guard:
    """Security headers on every answer; a form posted from another site is refused.

    The session cookie is SameSite=Lax, which already keeps other sites' forms from carrying
    it; the Origin check also covers the proxy mode, where the token is not a cookie. Plain
    ASGI rather than BaseHTTPMiddleware: that one runs every request in a task group of its
    own, a cost each page pays (the page benchmark holds pages against their APIs' time).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get("origin")
            if origin and origin != "null" and urlsplit(origin).netloc != headers.get("host"):
                refused = PlainTextResponse("Formularen kom fra et andet websted.", 403)
                await refused(scope, receive, send)
                return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name not in answer:
                        answer[name] = value
            await send(message)

        await self.app(scope, receive, secured)


def install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _: NotSignedIn) -> Response:
        settings: WebSettings = request.app.state.settings
        if settings.sign_in is SignIn.PROXY:
            return page(request, "error.html", 401, message=danish.CODES["unauthenticated"])
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": "/log-ind"})
        return RedirectResponse(f"{app_root(request)}/log-ind?til={quote(target)}", 303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if "text/html" not in request.headers.get("accept", ""):
            # Not a browser: answer like every CRM API does (docs/errors.md), so an unknown
            # path under `make run` is the same problem with or without the cockpit at `/`.
            return problem_response(request, error)
        message = {404: "Siden findes ikke.", 405: "Det kan man ikke her."}.get(
            error.status_code, "Forespørgslen kan ikke besvares."
        )
        return page(request, "error.html", error.status_code, message=message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        return page(request, "error.html", 422, message="Formularen mangler noget.")

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> Response:
        return page(request, "error.html", 400, message="Forespørgslen blev afvist: " + str(error))

    @app.exception_handler(ApiProblem)
    async def api_problem(request: Request, problem: ApiProblem) -> Response:
        if problem.status == 401 and request.app.state.settings.picks_identity:
            return RedirectResponse(f"{app_root(request)}/log-ind", 303)
        status = problem.status if problem.status in (401, 403, 404, 503) else 502
        return page(
            request,
            "error.html",
            status,
            message=danish.problem_message(problem.problem, problem.status),
            code=problem.code,
        )


def problem_response(request: Request, error: StarletteHTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "error")
    body = {
        "type": f"tag:crm-activity-backbone,2026:problem:{code}",
        "title": HTTPStatus(error.status_code).phrase,
        "status": error.status_code,
        "detail": str(error.detail),
        "instance": request.url.path,
        "code": code,
    }
    return JSONResponse(
        body,
        status_code=error.status_code,
        media_type="application/problem+json",
        headers=dict(error.headers or {}),
    )


def app_root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")
