"""Routes of the iCalendar feed: read an owner's feed, rotate its secret URL.

No `from __future__ import annotations` here: FastAPI resolves `Annotated[..., Depends(x)]`
hints at route definition time, and `x` is local to the factory.

Who may read `GET /calendars/{owner}.ics`: whoever holds the owner's current token (the URL
Outlook subscribes to, since a subscription cannot send headers), or an authenticated caller
who may act for the owner (the owner, a manager, a service). A wrong or outdated token is
answered 404, exactly like an owner who never had a feed: the answer must not tell a
prober which owners exist.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from crm_platform.auth import Authenticator, Principal
from crm_platform.http import ApiError, Forbidden, StrictRoute, error_responses
from crm_platform.parking import ParkingLot
from crm_platform.values import MailboxPath
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from calendar_sync.domain import mailbox_of
from calendar_sync.feed import FeedEntry, FeedStore
from calendar_sync.ics import render_feed

ICS_MEDIA_TYPE = "text/calendar; charset=utf-8"
FEED_WORKER = "calendar-sync-feed"

log = logging.getLogger(__name__)


class FeedToken(BaseModel):
    owner: str
    url: str
    rotated_at: datetime


def feed_router(
    feed: FeedStore,
    auth: Authenticator,
    base_url: str,
    clock: Callable[[], datetime],
    parking: ParkingLot | None = None,
) -> APIRouter:
    router = APIRouter(tags=["calendar feed"], route_class=StrictRoute)
    Caller = Annotated[Principal, Depends(auth.principal)]
    base = base_url.rstrip("/")

    def park_bad_entry(item: FeedEntry, error: Exception) -> None:
        if parking is None:
            log.error("feed entry %s left out: %s", item.uid, error)
            return
        # Once per entry version, however often the feed is fetched.
        position = f"{item.uid}@{item.sequence}"
        if not parking.parked_at(FEED_WORKER, position):
            parking.park_now(worker=FEED_WORKER, position=position, subject=item.uid, error=error)

    @router.get(
        "/calendars/{owner}.ics",
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}}, **error_responses(401, 403, 404)},
        summary="The owner's CRM activities as an iCalendar feed (RFC 5545)",
        # Outlook's subscription sends no credentials, only the secret token in the URL.
        openapi_extra={"security": auth.security_requirements(optional=True)},
    )
    def calendar(
        owner: MailboxPath,
        request: Request,
        token: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    ) -> Response:
        mailbox = mailbox_of(owner)
        if token is not None:
            if not feed.token_matches(mailbox, token):
                raise ApiError(404, "not_found", "There is no such calendar.")
        elif not auth.authenticate(request).may_act_for(mailbox):
            raise Forbidden("Only the owner, a sales manager or a service may read this feed.")
        return Response(
            render_feed(mailbox, feed.entries(mailbox), park_bad_entry),
            media_type=ICS_MEDIA_TYPE,
            # The token is in the URL: keep shared caches from storing the answer.
            headers={"Cache-Control": "private, no-store"},
        )

    @router.post(
        "/calendars/{owner}/token",
        responses=error_responses(403),
        summary="Issue a new secret feed URL for Outlook; the previous one stops working",
    )
    def rotate(owner: MailboxPath, caller: Caller) -> FeedToken:
        mailbox = mailbox_of(owner)
        if caller.user_id != mailbox and not caller.is_manager:
            raise Forbidden("Only the owner or a sales manager may rotate the feed URL.")
        token = feed.rotate_token(mailbox)
        return FeedToken(
            owner=mailbox,
            url=f"{base}/calendars/{quote(mailbox, safe='@')}.ics?token={token}",
            rotated_at=clock(),
        )

    return router
