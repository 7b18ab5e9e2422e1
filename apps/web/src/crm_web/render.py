"""Templates and the one way a page is rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from crm_web import danish
from crm_web.settings import WebSettings

HERE: Final = Path(__file__).parent


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=HERE / "templates")
    env = found.env
    env.globals.update(
        TYPES=danish.TYPES,
        CHANNELS=danish.CHANNELS,
        MOVE_REASONS=danish.MOVE_REASONS,
        ATTACHMENT_KINDS=danish.ATTACHMENT_KINDS,
        STATUSES=danish.STATUSES,
        SEGMENTS=danish.SEGMENTS,
        TARGET_STATUSES=danish.TARGET_STATUSES,
        ROLES=danish.ROLES,
        DISCOVERY_FIELDS=danish.DISCOVERY_FIELDS,
        GAP_WHY=danish.GAP_WHY,
        POTENTIAL_SOURCES=danish.POTENTIAL_SOURCES,
        EVENTS=danish.EVENTS,
        CUSTOMER_EVENTS=danish.CUSTOMER_EVENTS,
        SEGMENT_REASONS=danish.SEGMENT_REASONS,
    )
    env.filters.update(
        clock=danish.clock,
        day=danish.day,
        when=danish.when,
        form_time=danish.form_time,
        number=danish.number,
        money=danish.money,
        percent=danish.percent,
        urlpart=lambda v: quote(str(v), safe=""),
    )
    return found


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A template rendered with what every page needs (who is signed in, the mode)."""
    found: Jinja2Templates = request.app.state.templates
    settings: WebSettings = request.app.state.settings
    context.setdefault("caller", None)
    context.setdefault("nav", "")
    return found.TemplateResponse(
        request,
        name,
        {"settings": settings, "picks_identity": settings.picks_identity, **context},
        status_code=status,
    )
