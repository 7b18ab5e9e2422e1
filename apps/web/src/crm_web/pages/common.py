"""What every page needs: the caller, the APIs as the caller, names, redirects, waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from crm_web.backend import Api, ApiProblem, Backend
from crm_web.identity import Caller, caller_of
from crm_web.settings import WebSettings


def settings_of(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


def signed_in(request: Request) -> tuple[Caller, Api]:
    caller = caller_of(request, settings_of(request))
    backend: Backend = request.app.state.backend
    return caller, backend.as_(caller)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def go(request: Request, url: str) -> Response:
    """After a command: htmx follows HX-Redirect, a plain form a 303 (POST, redirect, GET)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, 303)


async def customer_names(api: Api, ids: Iterable[str]) -> dict[str, str]:
    """Customer id → name, asked of segmentation (one read per customer, concurrently)."""
    wanted = sorted(set(ids))

    async def one(customer_id: str) -> tuple[str, str]:
        try:
            found = await api.get("segmentation", f"/customers/{customer_id}")
        except ApiProblem:
            return customer_id, customer_id
        return customer_id, str(found.get("name") or customer_id)

    return dict(await asyncio.gather(*(one(c) for c in wanted)))


async def owned_customers(api: Api, owner: str) -> list[dict[str, Any]]:
    """Every customer `owner` is responsible for (pages of 500)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await api.get("segmentation", "/customers", owner=owner, limit=500, cursor=cursor)
        found.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return found


async def seen(request: Request, api: Api, *written: dict[str, Any] | None) -> None:
    """Wait, bounded, until the activity read models show what the caller just wrote.

    A command's answer is the activity as saved; the lists are read models a few
    milliseconds behind. The activity API waits for them itself when a read names the
    command's log position (`min_position`, at most 3 s); if they are slower still, the page
    is drawn anyway.
    """
    if api.position is None or not any(w and w.get("id") for w in written):
        return
    with contextlib.suppress(ApiProblem):
        await api.get("activity", "/activities", min_position=api.position, limit=1)
