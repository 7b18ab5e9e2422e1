"""Microsoft Graph calendar client: CRM activities as events in consultants' Outlook calendars.

`msal` (tokens, graph_auth.py) + `httpx`, not msgraph-sdk (see docs/graph.md). Graph is read by
what it documents, not by what it usually does (docs/graph.md lists both):

* errors by their Graph code, not their status: only `ErrorItemNotFound` on a request for one
  event means that event is gone (`EventGone`); every other 404 (`ErrorInvalidUser`,
  `MailboxNotEnabledForRESTAPI`, …) and every 403 (`ErrorAccessDenied`: consent, an
  application access policy) is about the mailbox (`MailboxUnavailable`), which an
  administrator can fix, so it must never be read as "the user deleted it";
* a user's delete moves the event to Deleted Items, where its immutable id keeps answering:
  `refresh_event` reads the event's parent folder (`PidTagParentEntryId`) and compares it with
  the mailbox's Deleted Items folder before it writes, and writes with `If-Match`, so a move in
  between is a conflict, not a silent update of a deleted event;
* "created" rests on more than one signal (`ensure_event`): the mailbox is searched for events
  tagged with the activity (`CrmActivityId`) before every POST; after an uncertain outcome
  (timeout, lost answer, 5xx, `ErrorDuplicateTransactionId`) it is searched again, and after a
  miss, again once the settle time has passed, before a POST with a *new* transactionId (Graph
  documents transactionId only as a way to avoid redundant POSTs: not how long it is
  remembered, nor what a repeat with another body answers);
* duplicates are repaired where they are found: every tagged event of the activity is listed,
  one is kept (the known one, else one that already shows what is wanted, else the oldest) and
  the others are deleted;
* throttling: 429/503/504 are retried in place only when Graph asks for a short pause
  (`RetryPolicy.inline_retry_after`); a longer `Retry-After` (Outlook sends whole seconds, 30 s
  and more) is raised as `Throttled`, capped, for the caller to pause the whole mailbox rather
  than hold a thread; at most 4 requests per mailbox are in flight from this process, and a
  `meter` counts every request against the mailbox's budget before it is sent;
* daylight-saving shifts: times go out as Copenhagen wall time in "Romance Standard Time" (the
  Windows zone; Graph refuses `Europe/Copenhagen`) and come back in UTC.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from calendar_sync.graph_auth import TokenProvider

log = logging.getLogger(__name__)

GRAPH_V1 = "https://graph.microsoft.com/v1.0"
# Our own property set: events we made carry "CrmActivityId" in it, so we can find them again.
CRM_PROPERTY_SET = "6d0c7d7e-3f8a-4e0b-9a51-2b6c4f1e8a37"
ACTIVITY_PROPERTY_ID = f"String {{{CRM_PROPERTY_SET}}} Name CrmActivityId"
# MAPI properties read as single-value extended properties (tag form, "Binary 0x…"):
# PidTagParentEntryId of an item, PidTagEntryId of a folder. Equal values: the item is in it.
PARENT_FOLDER_PROPERTY_ID = "Binary 0x0E09"
ENTRY_ID_PROPERTY_ID = "Binary 0x0FFF"
DELETED_ITEMS = "deleteditems"  # the well-known folder name
OUTLOOK_ZONE = "Romance Standard Time"
COPENHAGEN = ZoneInfo("Europe/Copenhagen")
MAX_CONCURRENT_PER_MAILBOX = 4
ITEM_NOT_FOUND = "ErrorItemNotFound"
DUPLICATE_TRANSACTION = "ErrorDuplicateTransactionId"
_TRANSACTION_NAMESPACE = uuid.UUID("0b6f1d2a-7c4e-4f3b-8d9a-5e2c1a7b3f60")
_THROTTLING = frozenset({429, 503, 504})
_ZONES = {"UTC": UTC, OUTLOOK_ZONE: COPENHAGEN}
# The request certainly never reached Graph: retrying cannot duplicate anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_PAGE = 50


class GraphError(Exception):
    """Graph said no (or could not be reached: status 0)."""

    def __init__(self, status: int, code: str, message: str, request_id: str = "") -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.request_id = status, code, message, request_id


class EventGone(GraphError):
    """404 `ErrorItemNotFound` on a request for one event: that event no longer exists."""


class MailboxUnavailable(GraphError):
    """The mailbox refuses us (a 404 other than ErrorItemNotFound, or a 403): its licence,
    a soft delete, a new UPN, consent or an application access policy. Not the event's fault,
    and nothing retrying soon can change: an administrator can."""


class ChangeKeyConflict(GraphError):
    """412: the event changed since the etag we sent (edited or moved in Outlook meanwhile)."""


class Throttled(GraphError):
    """429/503/504 with a pause longer than the client waits in place (or retries used up).

    `retry_after`: seconds Graph asked for (capped), None when it named none."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str = "",
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message, request_id)
        self.retry_after = retry_after


class GraphUnreachable(GraphError):
    """No answer after every retry (connection errors, timeouts on requests that may repeat)."""


class CreateUnresolved(GraphError):
    """Creates kept ending uncertain and no tagged event appeared: try again later."""


class BudgetExhausted(Exception):
    """The mailbox's request budget is spent; `wait` seconds until it allows another."""

    def __init__(self, mailbox: str, wait: float) -> None:
        super().__init__(f"request budget of {mailbox} spent for {wait:.0f}s")
        self.mailbox, self.wait = mailbox, wait


class CreateUncertain(Exception):
    """A POST may or may not have created the event: its answer was lost, timed out, was a
    5xx, or named the transactionId as used. Never answered by simply posting again."""


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

    def differs(self, event: GraphEvent) -> list[str]:
        """Names of the fields where `event` (read with text bodies) shows something else."""
        differences = {
            "subject": event.subject != self.subject,
            # Outlook may store text as HTML and give it back with other line breaks.
            "body": " ".join(event.body.split()) != " ".join(self.body.split()),
            "start": event.start != self.start.replace(microsecond=0),
            "end": event.end != self.end.replace(microsecond=0),
            "location": event.location != (self.location or ""),
            "categories": sorted(event.categories) != sorted(self.categories),
            "reminder": event.reminder_minutes != self.reminder_minutes,
            "show_as": event.show_as.lower() != self.show_as.lower(),
            "sensitivity": event.sensitivity.lower() != self.sensitivity.lower(),
        }
        return [name for name, differs in differences.items() if differs]


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
    parent_folder: str | None = None  # PidTagParentEntryId (base64), when asked for
    created: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], activity_id: str | None = None) -> GraphEvent:
        parent: str | None = None
        for prop in data.get("singleValueExtendedProperties") or ():
            prop_id = str(prop.get("id", ""))
            if _same_property(prop_id, ACTIVITY_PROPERTY_ID):
                activity_id = str(prop.get("value"))
            elif prop_id.lower() == PARENT_FOLDER_PROPERTY_ID.lower():
                parent = str(prop.get("value"))
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
            parent_folder=parent,
            created=str(data.get("createdDateTime") or ""),
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
    duplicates_removed: int = 0
    why: str = ""  # for a user delete: "gone" (404) or "deleted_items" (still readable)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries inside one call; long pauses are the caller's (see `Throttled`).

    `Retry-After` wins when Graph sends it and it is short enough to wait in place
    (`inline_retry_after`); otherwise full jitter over a capped exponential. A `Retry-After`
    above `retry_after_cap` is taken as the cap: a value that long is more likely a fault
    than an instruction, and the mailbox is looked at again then anyway.
    """

    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 30.0
    inline_retry_after: float = 2.0
    retry_after_cap: float = 600.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**attempt))


def transaction_id_for(mailbox: str, activity_id: str, version: int = 0, attempt: int = 0) -> str:
    """The same create (mailbox, activity, version) gets the same transactionId; a later
    attempt after a create stayed unresolved gets a new one (`attempt` > 0)."""
    key = f"{mailbox.lower()}|{activity_id}|{version}"
    return str(uuid.uuid5(_TRANSACTION_NAMESPACE, key if attempt == 0 else f"{key}|{attempt}"))


Meter = Callable[[str], None]


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
        settle_seconds: float = 10.0,
        create_attempts: int = 3,
        meter: Meter | None = None,
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
        self._settle = settle_seconds
        self._create_attempts = create_attempts
        self.meter: Meter | None = meter
        self._deleted_items: dict[str, str | None] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphCalendar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- single requests ----------------------------------------------------------------------
    def create_event(
        self,
        mailbox: str,
        event: OutlookEvent,
        *,
        activity_id: str,
        transaction_id: str | None = None,
        version: int = 0,
    ) -> GraphEvent:
        """One POST, tagged with the activity. `CreateUncertain` when the outcome is unknown."""
        payload = event.to_graph() | {
            "transactionId": transaction_id or transaction_id_for(mailbox, activity_id, version),
            "singleValueExtendedProperties": [{"id": ACTIVITY_PROPERTY_ID, "value": activity_id}],
        }
        response = self._request(mailbox, "POST", "/events", json=payload, create=True)
        return GraphEvent.from_json(response.json(), activity_id)

    def get_event(self, mailbox: str, event_id: str) -> GraphEvent:
        """The event with our tag and its parent folder. `EventGone` on ErrorItemNotFound."""
        params = {"$expand": _expand(ACTIVITY_PROPERTY_ID, PARENT_FOLDER_PROPERTY_ID)}
        response = self._request(
            mailbox, "GET", f"/events/{quote(event_id)}", params=params, item=True
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
            mailbox, "PATCH", f"/events/{quote(event_id)}", json=body, headers=headers, item=True
        )
        return GraphEvent.from_json(response.json())

    def delete_event(self, mailbox: str, event_id: str) -> bool:
        """Delete the event; False when it was already gone (that counts as done)."""
        try:
            self._request(mailbox, "DELETE", f"/events/{quote(event_id)}", item=True)
        except EventGone:
            return False
        return True

    def find_by_activity(self, mailbox: str, activity_id: str) -> list[GraphEvent]:
        """Every event of the default calendar tagged with this activity, oldest first."""
        literal = activity_id.replace("'", "''")
        params = {
            "$expand": _expand(ACTIVITY_PROPERTY_ID),
            "$filter": (
                f"singleValueExtendedProperties/Any(ep: ep/id eq '{ACTIVITY_PROPERTY_ID}' "
                f"and ep/value eq '{literal}')"
            ),
            "$top": str(_PAGE),
        }
        found = list(self._pages(mailbox, "/events", params))
        found.sort(key=lambda e: (e.created, e.id))
        return found

    def calendar_view(self, mailbox: str, start: datetime, end: datetime) -> list[GraphEvent]:
        """Every event of the default calendar in [start, end), our tag expanded."""
        params = {
            "startDateTime": start.astimezone(UTC).isoformat(timespec="seconds"),
            "endDateTime": end.astimezone(UTC).isoformat(timespec="seconds"),
            "$expand": _expand(ACTIVITY_PROPERTY_ID),
            "$top": str(_PAGE),
        }
        return list(self._pages(mailbox, "/calendarView", params))

    def deleted_items_folder(self, mailbox: str) -> str | None:
        """PidTagEntryId of the mailbox's Deleted Items (cached: a folder's id stays)."""
        key = mailbox.lower()
        if key not in self._deleted_items:
            params = {"$select": "id", "$expand": _expand(ENTRY_ID_PROPERTY_ID)}
            response = self._request(mailbox, "GET", f"/mailFolders/{DELETED_ITEMS}", params=params)
            value = None
            for prop in response.json().get("singleValueExtendedProperties") or ():
                if str(prop.get("id", "")).lower() == ENTRY_ID_PROPERTY_ID.lower():
                    value = str(prop.get("value"))
            self._deleted_items[key] = value
        return self._deleted_items[key]

    def in_deleted_items(self, mailbox: str, event: GraphEvent) -> bool:
        """Whether the event sits in Deleted Items (where a user's delete in Outlook puts it)."""
        if event.parent_folder is None:
            # Graph did not say where it is: no evidence of a delete, so none is assumed.
            log.warning("no parent folder for event %s in %s", event.id, mailbox)
            return False
        folder = self.deleted_items_folder(mailbox)
        return folder is not None and folder == event.parent_folder

    # --- what the calendar port needs ---------------------------------------------------------
    def ensure_event(
        self,
        mailbox: str,
        event: OutlookEvent,
        *,
        activity_id: str,
        version: int = 0,
        keep: str | None = None,
        look_first: bool = True,
    ) -> SyncResult:
        """The activity's one event in the mailbox, created if no tagged one exists.

        Looks first (an earlier attempt may have created it under any transactionId), then
        posts; an uncertain POST is followed by a look, a pause of `settle_seconds` and a second
        look before the next POST, which carries a new transactionId. `look_first=False`: the
        caller knows no create of the activity was ever sent (its state says so), so there is
        nothing to find yet; the looks after an uncertain POST stay.
        """
        if look_first:
            found = self.find_by_activity(mailbox, activity_id)
            if found:
                return self._adopt(mailbox, event, found, keep)
        for attempt in range(self._create_attempts):
            tx = transaction_id_for(mailbox, activity_id, version, attempt)
            try:
                created = self.create_event(
                    mailbox, event, activity_id=activity_id, transaction_id=tx
                )
            except CreateUncertain as uncertain:
                log.info(
                    "create of %s in %s uncertain (%s): looking", activity_id, mailbox, uncertain
                )
                found = self.find_by_activity(mailbox, activity_id)
                if not found:
                    # Graph promises no time by which an accepted POST is visible.
                    self._sleep(self._settle)
                    found = self.find_by_activity(mailbox, activity_id)
                if found:
                    return self._adopt(mailbox, event, found, keep)
                continue
            return SyncResult(SyncStatus.CREATED, created)
        raise CreateUnresolved(
            0, "CreateUnresolved", f"{self._create_attempts} uncertain creates of {activity_id}"
        )

    def refresh_event(
        self, mailbox: str, event: OutlookEvent, *, activity_id: str, event_id: str
    ) -> SyncResult:
        """Bring the event we made up to date; DELETED_IN_OUTLOOK when the user deleted it
        (gone, or in Deleted Items), never re-created here."""
        for _ in range(3):
            try:
                current = self.get_event(mailbox, event_id)
            except EventGone:
                return SyncResult(SyncStatus.DELETED_IN_OUTLOOK, None, why="gone")
            if self.in_deleted_items(mailbox, current):
                return SyncResult(SyncStatus.DELETED_IN_OUTLOOK, None, why="deleted_items")
            if not event.differs(current):
                return SyncResult(SyncStatus.UPDATED, current)
            try:
                updated = self.update_event(mailbox, event_id, event, etag=current.etag)
            except EventGone:
                return SyncResult(SyncStatus.DELETED_IN_OUTLOOK, None, why="gone")
            except ChangeKeyConflict:
                continue  # changed (or moved to Deleted Items) since it was read: look again
            return SyncResult(SyncStatus.UPDATED, updated)
        raise ChangeKeyConflict(412, "ErrorIrresolvableConflict", f"{event_id} kept changing")

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
            return self.ensure_event(mailbox, event, activity_id=activity_id, version=version)
        return self.refresh_event(mailbox, event, activity_id=activity_id, event_id=event_id)

    def _adopt(
        self, mailbox: str, event: OutlookEvent, found: list[GraphEvent], keep: str | None
    ) -> SyncResult:
        """Keep one of the activity's tagged events, delete the others, show `event`."""
        chosen = next((e for e in found if e.id == keep), None)
        chosen = chosen or next((e for e in found if not event.differs(e)), None) or found[0]
        removed = 0
        for other in found:
            if other.id != chosen.id and self.delete_event(mailbox, other.id):
                removed += 1
        if removed:
            log.warning(
                "removed %d duplicate(s) of activity %s in %s", removed, chosen.activity_id, mailbox
            )
        if event.differs(chosen):
            chosen = self.update_event(mailbox, chosen.id, event)
        return SyncResult(SyncStatus.UPDATED, chosen, duplicates_removed=removed)

    # --- transport ----------------------------------------------------------------------------
    def _pages(self, mailbox: str, path: str, params: Mapping[str, str]) -> Iterator[GraphEvent]:
        response = self._request(mailbox, "GET", path, params=params)
        while True:
            body = response.json()
            for item in body.get("value", []):
                yield GraphEvent.from_json(item)
            link = body.get("@odata.nextLink")
            if not link:
                return
            response = self._request(mailbox, "GET", str(link))

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
        create: bool = False,
        item: bool = False,
    ) -> httpx.Response:
        """One Graph call with retries. `create=True`: an answer that may hide a created event
        raises `CreateUncertain` instead of a blind resend. `item=True`: the path names one
        event, so `ErrorItemNotFound` is `EventGone`. `path` may be a whole `@odata.nextLink`."""
        url = path if path.startswith("http") else f"{self._base}/users/{quote(mailbox)}{path}"
        refreshed = False
        attempt = 0
        while True:
            if self.meter is not None:
                self.meter(mailbox)  # BudgetExhausted stops here, before anything is sent
            request_headers = httpx.Headers(
                [
                    ("Authorization", f"Bearer {self._tokens.token()}"),
                    # Separate headers, the form Graph's pages show for each preference.
                    ("Prefer", 'IdType="ImmutableId"'),
                    ("Prefer", 'outlook.body-content-type="text"'),
                    ("client-request-id", str(uuid.uuid4())),
                    *(headers or {}).items(),
                ]
            )
            response: httpx.Response | None = None
            failure: httpx.TransportError | None = None
            with self._slot(mailbox):  # held for the exchange only, never while backing off
                try:
                    response = self._http.request(
                        method, url, params=params, json=json, headers=request_headers
                    )
                except httpx.TransportError as exc:
                    failure = exc
            retry_after: float | None = None
            if response is not None:
                status = response.status_code
                if status < 400:
                    return response
                if status == 401 and not refreshed:
                    self._tokens.invalidate()  # expired or revoked: one retry with a new token
                    refreshed = True
                    continue
                error = _error(response, item=item)
                if create and (status >= 500 or error.code == DUPLICATE_TRANSACTION):
                    # 5xx: Graph may have stored the event before it failed; a named
                    # transactionId: an earlier POST stored something under it.
                    raise CreateUncertain(f"{method} {path}: {error}")
                if status not in _THROTTLING and not (status >= 500 and not create):
                    raise error
                retry_after = _retry_after(response)
            elif create and not isinstance(failure, _NOT_SENT):
                raise CreateUncertain(f"{method} {path}: {failure!r}")
            attempt += 1
            wait = self._retry.delay(attempt - 1, retry_after, self._rng)
            if attempt >= self._retry.max_attempts or wait > self._retry.inline_retry_after:
                if response is None:
                    raise GraphUnreachable(0, "TransportError", repr(failure))
                error = _error(response, item=item)
                if response.status_code in _THROTTLING:
                    capped = (
                        min(retry_after, self._retry.retry_after_cap)
                        if retry_after is not None
                        else None
                    )
                    raise Throttled(
                        error.status,
                        error.code,
                        error.message,
                        error.request_id,
                        retry_after=capped,
                    )
                raise error
            self._sleep(wait)


def _expand(*property_ids: str) -> str:
    clauses = " or ".join(f"id eq '{p}'" for p in property_ids)
    return f"singleValueExtendedProperties($filter={clauses})"


def _same_property(a: str, b: str) -> bool:
    """Extended property ids: the type and GUID ignore case, the name does not (Graph matches
    the name case-sensitively)."""
    head_a, _, name_a = a.partition(" Name ")
    head_b, _, name_b = b.partition(" Name ")
    return head_a.lower() == head_b.lower() and name_a == name_b


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


def _error(response: httpx.Response, *, item: bool) -> GraphError:
    """The Graph error of a failed answer, by its code: see the module doc."""
    try:
        detail = response.json().get("error") or {}
    except ValueError:
        detail = {}
    code = str(detail.get("code") or response.reason_phrase)
    message = str(detail.get("message") or "")
    request_id = response.headers.get("request-id", "")
    status = response.status_code
    if status == 404 and item and code == ITEM_NOT_FOUND:
        return EventGone(status, code, message, request_id)
    if status in (403, 404):
        return MailboxUnavailable(status, code, message, request_id)
    if status == 412:
        return ChangeKeyConflict(status, code, message, request_id)
    return GraphError(status, code, message, request_id)
