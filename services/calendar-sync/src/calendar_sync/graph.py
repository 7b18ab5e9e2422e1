"""Microsoft Graph calendar client: CRM activities as events in consultants' Outlook calendars.

`msal` (tokens, graph_auth.py) + `httpx`, not msgraph-sdk (see docs/graph.md). What it
guards against, all from the complaints that docs/graph.md lists:

* duplicates after a timeout: every create carries a deterministic `transactionId`, and a create
  whose answer is lost (connection dropped, timeout, 504) is resolved by looking the event up by
  its `CrmActivityId` extended property *before* any new POST;
* throttling: 429/503/504 are retried, honouring `Retry-After` (fractional too), otherwise with
  capped exponential backoff and full jitter; at most 4 requests per mailbox are in flight
  (Outlook's per app-and-mailbox concurrency limit), counted across all threads of the client;
* daylight-saving shifts: times go out as Copenhagen wall time in "Romance Standard Time" (the
  Windows zone; Graph refuses `Europe/Copenhagen`) and come back in UTC;
* deleted events coming back: a 404 on update is `EventGone`, and `sync_event` reports it as
  `deleted_in_outlook` instead of creating the event again; a 404 on delete counts as done.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from calendar_sync.graph_auth import TokenProvider

GRAPH_V1 = "https://graph.microsoft.com/v1.0"
# Our own property set: events we made carry "CrmActivityId" in it, so we can find them again.
CRM_PROPERTY_SET = "6d0c7d7e-3f8a-4e0b-9a51-2b6c4f1e8a37"
ACTIVITY_PROPERTY_ID = f"String {{{CRM_PROPERTY_SET}}} Name CrmActivityId"
OUTLOOK_ZONE = "Romance Standard Time"
COPENHAGEN = ZoneInfo("Europe/Copenhagen")
MAX_CONCURRENT_PER_MAILBOX = 4
_TRANSACTION_NAMESPACE = uuid.UUID("0b6f1d2a-7c4e-4f3b-8d9a-5e2c1a7b3f60")
_RETRYABLE = frozenset({429, 503, 504})
_ZONES = {"UTC": UTC, OUTLOOK_ZONE: COPENHAGEN}
# The request certainly never reached Graph: retrying cannot duplicate anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class GraphError(Exception):
    """Graph said no (or could not be reached: status 0)."""

    def __init__(self, status: int, code: str, message: str, request_id: str = "") -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.request_id = status, code, message, request_id


class EventGone(GraphError):
    """404 on get/update: the event no longer exists (a user deleted it in Outlook)."""


class ChangeKeyConflict(GraphError):
    """412: the event changed since the etag we sent (someone edited it in Outlook)."""


class GraphUnreachable(GraphError):
    """No answer after every retry (connection errors, timeouts)."""


class _AmbiguousOutcome(Exception):
    """A request may or may not have taken effect: its answer was lost."""


@dataclass(frozen=True)
class OutlookEvent:
    """What we want an event to look like. Times are aware datetimes, any zone."""

    subject: str
    body: str
    start: datetime
    end: datetime
    location: str | None = None
    categories: tuple[str, ...] = ()
    reminder_minutes: int | None = 15  # None: no reminder
    show_as: str = "busy"
    sensitivity: str = "normal"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("OutlookEvent needs aware datetimes: naive ones shift at DST")
        if self.end < self.start:
            raise ValueError("OutlookEvent ends before it starts")

    def to_graph(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "body": {"contentType": "text", "content": self.body},
            "start": _wall_time(self.start),
            "end": _wall_time(self.end),
            "location": {"displayName": self.location or ""},
            "categories": list(self.categories),
            "isReminderOn": self.reminder_minutes is not None,
            "reminderMinutesBeforeStart": self.reminder_minutes or 0,
            "showAs": self.show_as,
            "sensitivity": self.sensitivity,
        }


@dataclass(frozen=True)
class GraphEvent:
    """An event as Graph holds it; times in UTC."""

    id: str
    change_key: str
    etag: str
    subject: str
    body: str
    start: datetime
    end: datetime
    location: str
    categories: tuple[str, ...]
    reminder_minutes: int | None
    show_as: str
    sensitivity: str
    transaction_id: str | None
    activity_id: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], activity_id: str | None = None) -> GraphEvent:
        for prop in data.get("singleValueExtendedProperties") or ():
            if str(prop.get("id", "")).lower() == ACTIVITY_PROPERTY_ID.lower():
                activity_id = str(prop.get("value"))
        return cls(
            id=str(data["id"]),
            change_key=str(data.get("changeKey", "")),
            etag=str(data.get("@odata.etag", "")),
            subject=str(data.get("subject") or ""),
            body=str((data.get("body") or {}).get("content") or ""),
            start=_parse_graph_time(data["start"]),
            end=_parse_graph_time(data["end"]),
            location=str((data.get("location") or {}).get("displayName") or ""),
            categories=tuple(data.get("categories") or ()),
            reminder_minutes=(
                int(data.get("reminderMinutesBeforeStart") or 0)
                if data.get("isReminderOn")
                else None
            ),
            show_as=str(data.get("showAs") or ""),
            sensitivity=str(data.get("sensitivity") or ""),
            transaction_id=data.get("transactionId"),
            activity_id=activity_id,
            raw=data,
        )


class SyncStatus(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED_IN_OUTLOOK = "deleted_in_outlook"


@dataclass(frozen=True)
class SyncResult:
    status: SyncStatus
    event: GraphEvent | None  # None when the user deleted it in Outlook


@dataclass(frozen=True)
class RetryPolicy:
    """`Retry-After` wins when Graph sends it; otherwise full jitter over a capped exponential."""

    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return retry_after
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**attempt))


def transaction_id_for(mailbox: str, activity_id: str, version: int = 0) -> str:
    """The same create (mailbox, activity, version) always gets the same transactionId."""
    return str(uuid.uuid5(_TRANSACTION_NAMESPACE, f"{mailbox.lower()}|{activity_id}|{version}"))


class GraphCalendar:
    """Calendar events in users' mailboxes. Thread-safe; share one per process."""

    def __init__(
        self,
        tokens: TokenProvider,
        *,
        base_url: str = GRAPH_V1,
        http: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_concurrent_per_mailbox: int = MAX_CONCURRENT_PER_MAILBOX,
        timeout: float = 30.0,
    ) -> None:
        self._tokens = tokens
        self._base = base_url.rstrip("/")
        self._http = http or httpx.Client(timeout=timeout)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._limit = max_concurrent_per_mailbox
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphCalendar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- operations ---------------------------------------------------------------------------
    def create_event(
        self, mailbox: str, event: OutlookEvent, *, activity_id: str, version: int = 0
    ) -> GraphEvent:
        """Create the event for an activity, at most once per (mailbox, activity, version)."""
        payload = event.to_graph() | {
            "transactionId": transaction_id_for(mailbox, activity_id, version),
            "singleValueExtendedProperties": [{"id": ACTIVITY_PROPERTY_ID, "value": activity_id}],
        }
        for attempt in range(self._retry.max_attempts):
            try:
                response = self._request(mailbox, "POST", "/events", json=payload, resend=False)
                return GraphEvent.from_json(response.json(), activity_id)
            except _AmbiguousOutcome:
                # The event may exist already: look before posting again.
                found = self.find_by_activity(mailbox, activity_id)
                if found is not None:
                    return found
            except GraphError as error:
                if error.code != "ErrorDuplicateTransactionId":
                    raise
                # Same transactionId, other body: an earlier create of this version went
                # through with other content. Take that event and bring it up to date.
                found = self.find_by_activity(mailbox, activity_id)
                if found is None:
                    raise
                updated = self.update_event(mailbox, found.id, event)
                return replace(updated, activity_id=activity_id)
            self._sleep(self._retry.delay(attempt, None, self._rng))
        raise GraphUnreachable(0, "CreateUnresolved", f"create for {activity_id} never answered")

    def get_event(self, mailbox: str, event_id: str) -> GraphEvent:
        response = self._request(
            mailbox, "GET", f"/events/{quote(event_id)}", params=_expand_ours(), gone=True
        )
        return GraphEvent.from_json(response.json())

    def update_event(
        self,
        mailbox: str,
        event_id: str,
        changes: OutlookEvent | Mapping[str, Any],
        *,
        etag: str | None = None,
    ) -> GraphEvent:
        """PATCH the event. `EventGone` if it was deleted; `ChangeKeyConflict` on a stale etag."""
        body = changes.to_graph() if isinstance(changes, OutlookEvent) else dict(changes)
        headers = {"If-Match": etag} if etag else {}
        response = self._request(
            mailbox, "PATCH", f"/events/{quote(event_id)}", json=body, headers=headers, gone=True
        )
        return GraphEvent.from_json(response.json())

    def delete_event(self, mailbox: str, event_id: str) -> bool:
        """Delete the event; False when it was already gone (that counts as done)."""
        try:
            self._request(mailbox, "DELETE", f"/events/{quote(event_id)}")
        except GraphError as error:
            if error.status == 404:
                return False
            raise
        return True

    def find_by_activity(self, mailbox: str, activity_id: str) -> GraphEvent | None:
        """The event tagged with this activity id (the oldest, should there be several)."""
        literal = activity_id.replace("'", "''")
        params = _expand_ours() | {
            "$filter": (
                f"singleValueExtendedProperties/Any(ep: ep/id eq '{ACTIVITY_PROPERTY_ID}' "
                f"and ep/value eq '{literal}')"
            ),
            "$top": "50",
        }
        response = self._request(mailbox, "GET", "/events", params=params)
        found = [GraphEvent.from_json(item) for item in response.json().get("value", [])]
        found.sort(key=lambda e: str(e.raw.get("createdDateTime", "")))
        return found[0] if found else None

    def sync_event(
        self,
        mailbox: str,
        event: OutlookEvent,
        *,
        activity_id: str,
        event_id: str | None = None,
        version: int = 0,
    ) -> SyncResult:
        """Create the event, or update the one we made; never re-create one the user deleted."""
        if event_id is None:
            created = self.create_event(mailbox, event, activity_id=activity_id, version=version)
            return SyncResult(SyncStatus.CREATED, created)
        try:
            return SyncResult(SyncStatus.UPDATED, self.update_event(mailbox, event_id, event))
        except EventGone:
            return SyncResult(SyncStatus.DELETED_IN_OUTLOOK, None)

    # --- transport ----------------------------------------------------------------------------
    @contextmanager
    def _slot(self, mailbox: str) -> Iterator[None]:
        with self._slots_lock:
            slot = self._slots.setdefault(mailbox.lower(), threading.BoundedSemaphore(self._limit))
        with slot:
            yield

    def _request(
        self,
        mailbox: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        resend: bool = True,
        gone: bool = False,
    ) -> httpx.Response:
        """One Graph call with retries. `resend=False` (creates): a lost answer is not retried
        blindly but raised as `_AmbiguousOutcome`. `gone=True`: 404 raises `EventGone`."""
        url = f"{self._base}/users/{quote(mailbox)}{path}"
        refreshed = False
        attempt = 0
        while True:
            request_headers = {
                "Authorization": f"Bearer {self._tokens.token()}",
                "Prefer": 'IdType="ImmutableId", outlook.body-content-type="text"',
                "client-request-id": str(uuid.uuid4()),
                **(headers or {}),
            }
            response: httpx.Response | None = None
            failure: httpx.TransportError | None = None
            with self._slot(mailbox):  # held for the exchange only, never while backing off
                try:
                    response = self._http.request(
                        method, url, params=params, json=json, headers=request_headers
                    )
                except httpx.TransportError as exc:
                    failure = exc
            if response is not None:
                if response.status_code < 400:
                    return response
                if response.status_code == 401 and not refreshed:
                    self._tokens.invalidate()  # expired or revoked: one retry with a new token
                    refreshed = True
                    continue
                if response.status_code not in _RETRYABLE:
                    raise _error(response, gone=gone)
                if response.status_code == 504 and not resend:
                    raise _AmbiguousOutcome(f"{method} {path}: 504")
            elif not resend and not isinstance(failure, _NOT_SENT):
                raise _AmbiguousOutcome(f"{method} {path}: {failure!r}")
            attempt += 1
            if attempt >= self._retry.max_attempts:
                if response is not None:
                    raise _error(response, gone=gone)
                raise GraphUnreachable(0, "TransportError", repr(failure))
            retry_after = _retry_after(response) if response is not None else None
            self._sleep(self._retry.delay(attempt - 1, retry_after, self._rng))


def _expand_ours() -> dict[str, str]:
    return {"$expand": f"singleValueExtendedProperties($filter=id eq '{ACTIVITY_PROPERTY_ID}')"}


def _wall_time(instant: datetime) -> dict[str, str]:
    # Copenhagen wall time named by the Windows zone: Outlook keeps the local time across DST.
    local = instant.astimezone(COPENHAGEN).replace(tzinfo=None)
    return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": OUTLOOK_ZONE}


def _parse_graph_time(value: Mapping[str, Any]) -> datetime:
    zone = _ZONES.get(str(value.get("timeZone")))
    if zone is None:
        raise ValueError(f"unexpected time zone in Graph's answer: {value.get('timeZone')!r}")
    wall, _, fraction = str(value["dateTime"]).partition(".")
    parsed = datetime.fromisoformat(wall).replace(
        microsecond=int((fraction or "0")[:6].ljust(6, "0"))
    )
    return parsed.replace(tzinfo=zone).astimezone(UTC)


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(float(raw), 0.0) if raw is not None else None
    except ValueError:
        return None  # an HTTP-date: Graph sends seconds, so fall back to backoff


def _error(response: httpx.Response, *, gone: bool) -> GraphError:
    try:
        detail = response.json().get("error") or {}
    except ValueError:
        detail = {}
    code = str(detail.get("code") or response.reason_phrase)
    message = str(detail.get("message") or "")
    request_id = response.headers.get("request-id", "")
    if response.status_code == 404 and gone:
        return EventGone(404, code, message, request_id)
    if response.status_code == 412:
        return ChangeKeyConflict(412, code, message, request_id)
    return GraphError(response.status_code, code, message, request_id)
