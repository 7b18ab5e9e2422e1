"""Sign-in: pick a user and a role (dev and `make up`), sign out; `/` sends people on."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from crm_web.identity import COOKIE, COOKIE_MAX_AGE, ROLES, NotSignedIn, caller_of, seal
from crm_web.pages.common import settings_of
from crm_web.render import page
from crm_web.settings import SignIn

router = APIRouter()


@router.get("/")
async def start(request: Request) -> Response:
    try:
        caller = caller_of(request, settings_of(request))
    except NotSignedIn:
        if settings_of(request).picks_identity:
            return RedirectResponse("/log-ind", 303)
        raise
    return RedirectResponse("/team" if caller.is_manager else "/uge", 303)


@router.get("/log-ind")
async def sign_in_page(request: Request, til: str = "") -> Response:
    settings = settings_of(request)
    if not settings.picks_identity:
        raise HTTPException(404)
    return page(request, "signin.html", users=settings.dev_users, target=_safe(til))


@router.post("/log-ind")
async def sign_in(
    request: Request,
    user: Annotated[str, Form()],
    role: Annotated[str, Form()],
    til: Annotated[str, Form()] = "",
) -> Response:
    settings = settings_of(request)
    if not settings.picks_identity:
        raise HTTPException(404)
    user = user.strip().lower()
    error = None
    if "@" not in user or role not in ROLES:
        error = "Skriv en e-mailadresse og vælg en rolle."
    data: dict[str, object] = {"user": user, "roles": [role]}
    if error is None and settings.sign_in is SignIn.ISSUER:
        assert settings.token_url is not None
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(
                    settings.token_url, json={"username": user, "roles": [role]}
                )
            answer.raise_for_status()
            data["token"] = answer.json()["access_token"]
        except (httpx.HTTPError, KeyError, ValueError):
            error = "Login-tjenesten svarer ikke. Prøv igen om lidt."
    if error is not None:
        return page(
            request,
            "signin.html",
            422,
            users=settings.dev_users,
            target=_safe(til),
            error=error,
            chosen={"user": user, "role": role},
        )
    target = _safe(til) or ("/team" if role == "sales_manager" else "/uge")
    response = RedirectResponse(target, 303)
    response.set_cookie(
        COOKIE,
        seal(settings.session_secret, data),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    return response


@router.post("/log-ud")
async def sign_out(request: Request) -> Response:
    response = RedirectResponse("/log-ind" if settings_of(request).picks_identity else "/", 303)
    response.delete_cookie(COOKIE)
    return response


def _safe(target: str) -> str:
    """Only a path of this app (never another site) after signing in."""
    return target if target.startswith("/") and not target.startswith("//") else ""
