"""The fake's mailboxes: folders and calendar events with Graph's semantics.

Pure state and rules, no HTTP: the request handler (graph_http.py) parses requests and calls in
here, and the test controls (graph_fake.py) read and change the same state. Thread-safe: every
public method takes the store's lock, because the HTTP server answers requests in threads.

Where Graph's documentation leaves a behaviour open, the store follows `Behaviour` (a switch
per open point, listed in docs/graph.md with the setting used until a tenant run records the
answer).
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from tests.fakes.graph_errors import (
    GraphFault,
    bad_request,
    duplicate_transaction,
    item_not_found,
    stale_change_key,
)
from tests.fakes.graph_times import (
    format_graph_date_time,
    format_timestamp,
    parse_date_time_time_zone,
)

# Properties a client may write, with the value Graph gives an event that does not set them.
WRITABLE_DEFAULTS: dict[str, Any] = {
    "subject": "",
    "body": {"contentType": "text", "content": ""},
    "location": {"displayName": ""},
    "categories": [],
    "isReminderOn": True,
    "reminderMinutesBeforeStart": 15,
    "showAs": "busy",
    "sensitivity": "normal",
    "importance": "normal",
    "isAllDay": False,
    "isOnlineMeeting": False,
    "responseRequested": True,
    "attendees": [],
}
SHOW_AS = frozenset({"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"})
SENSITIVITY = frozenset({"normal", "personal", "private", "confidential"})
READ_ONLY = frozenset({"id", "changeKey", "createdDateTime", "lastModifiedDateTime", "iCalUId"})
# MAPI properties by tag (singleValueLegacyExtendedProperty "Binary 0x…" form).
PARENT_ENTRY_ID = "binary 0x0e09"  # PidTagParentEntryId of an item
ENTRY_ID = "binary 0x0fff"  # PidTagEntryId of a folder
CALENDAR = "calendar"  # the default calendar's key
DELETED_ITEMS = "deleteditems"  # the well-known mail folder

_ANY_FILTER = re.compile(
    r"^\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'"
    r"\s+and\s+\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$",
    re.IGNORECASE,
)
_EXPAND = re.compile(r"^\s*singleValueExtendedProperties(?:\(\$filter=(.*)\))?\s*$", re.I)
_ID_EQ = re.compile(r"id\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)


@dataclass
class Behaviour:
    """Graph's behaviour where its documentation is silent: one switch per open point.

    Each default is the fake's reading until a tenant run (`make graph-contract`) records the
    answer; docs/graph.md lists them.
    """

    # How long a transactionId is remembered: while its event exists ("event"), for good
    # ("forever"), or a number of (fake) seconds. The event resource page documents only that
    # it avoids redundant POSTs.
    transaction_memory: Literal["event", "forever"] | float = "event"
    # Where a transactionId must be unique: in the mailbox, or across the application.
    transaction_scope: Literal["mailbox", "application"] = "mailbox"
    # The status of ErrorDuplicateTransactionId (seen as 400 and as 409).
    duplicate_transaction_status: int = 400
    # What GET/PATCH by id answer for an event in Deleted Items ("ok": as before, since the
    # immutable id survives a move; "not_found": 404 ErrorItemNotFound).
    deleted_item_get: Literal["ok", "not_found"] = "ok"
    # DELETE on an event moves it to Deleted Items (a second DELETE purges it), as a user's
    # delete in Outlook does; False: the first DELETE purges.
    delete_moves_to_deleted_items: bool = True
    # A comma-joined Prefer header is honoured in full (RFC 7240 allows it; Graph's pages show
    # one header per preference). False: only its first preference counts.
    combined_prefer: bool = True


def property_key(prop_id: str) -> str:
    """An extended property id as Graph compares it.

    The singleValueLegacyExtendedProperty "get" page: filtering on the string Name in the id is
    case-sensitive (type and GUID are not: they name the same property in any case).
    """
    head, sep, name = prop_id.partition(" Name ")
    head = " ".join(head.lower().split())
    return f"{head}{sep}{name}" if sep else head


def _new_id() -> str:
    # Opaque, URL-safe, immutable: the shape of an ImmutableId, not its content.
    return "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A" + secrets.token_urlsafe(24)


def _new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(16)).decode()


@dataclass
class Folder:
    key: str  # CALENDAR, DELETED_ITEMS, or a secondary calendar's id
    id: str
    name: str
    entry_id: bytes
    is_calendar: bool


@dataclass
class StoredEvent:
    id: str
    mailbox: str
    change_key: str
    created: datetime
    modified: datetime
    props: dict[str, Any]
    start: datetime
    end: datetime
    start_zone: str
    end_zone: str
    transaction_id: str | None = None
    create_fingerprint: str = ""
    extended: dict[str, tuple[str, str]] = field(default_factory=dict)  # key → (id, value)
    ical_uid: str = ""
    seq: int = 0
    folder: str = CALENDAR

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'


@dataclass(frozen=True)
class Removal:
    seq: int
    id: str
    start: datetime
    end: datetime


@dataclass
class _Remembered:
    event_id: str
    mailbox: str
    fingerprint: str
    at: float


def parse_extended_filter(expression: str) -> tuple[str, str]:
    """`singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…')` → (id, value)."""
    match = _ANY_FILTER.match(expression)
    if match is None:
        raise bad_request(
            f"Invalid filter clause (the fake supports only the extended-property Any filter): "
            f"{expression}",
            "ErrorInvalidUrlQueryFilter",
        )
    return match.group(2).replace("''", "'"), match.group(3).replace("''", "'")


def parse_expand(expression: str | None) -> list[str] | None:
    """Which extended property ids `$expand` asks for: None = no expansion, [] = all of them."""
    if not expression:
        return None
    match = _EXPAND.match(expression)
    if match is None:
        raise bad_request(f"Could not find a property named '{expression}' on type 'event'.")
    return [found.replace("''", "'") for found in _ID_EQ.findall(match.group(1) or "")]


def _text_as_html(text: str) -> str:
    escaped = html.escape(text).replace("\n", "<br>\r\n")
    return (
        '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; '
        'charset=utf-8">\r\n</head>\r\n<body>\r\n<div class="PlainText">'
        f"{escaped}</div>\r\n</body>\r\n</html>\r\n"
    )


def _html_as_text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", markup))).strip()


class GraphStore:
    """Events per mailbox (keys are lower-cased UPNs: mailbox names ignore case)."""

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.behaviour = behaviour or Behaviour()
        self._clock = clock or (lambda: 0.0)
        self._events: dict[str, dict[str, StoredEvent]] = {}
        self._folders: dict[str, dict[str, Folder]] = {}
        self._transactions: dict[tuple[str, str], _Remembered] = {}
        self._removals: dict[str, list[Removal]] = {}
        self._seq = 0

    # --- folders ------------------------------------------------------------------------------
    def folders(self, mailbox: str) -> dict[str, Folder]:
        """The mailbox's folders: its default calendar and Deleted Items always exist."""
        with self.lock:
            found = self._folders.get(mailbox)
            if found is None:
                found = {
                    CALENDAR: self._folder(CALENDAR, "Calendar", is_calendar=True),
                    DELETED_ITEMS: self._folder(DELETED_ITEMS, "Deleted Items", False),
                }
                self._folders[mailbox] = found
            return found

    def folder(self, mailbox: str, key_or_id: str) -> Folder:
        """A folder by key, well-known name or id (404 ErrorItemNotFound otherwise)."""
        folders = self.folders(mailbox)
        wanted = key_or_id.lower() if key_or_id.lower() in folders else key_or_id
        for folder in folders.values():
            if wanted in (folder.key, folder.id):
                return folder
        raise item_not_found()

    def add_calendar(self, mailbox: str, name: str) -> Folder:
        with self.lock:
            folder = self._folder("", name, is_calendar=True)
            folder.key = folder.id
            self.folders(mailbox)[folder.key] = folder
            return folder

    def remove_calendar(self, mailbox: str, key: str) -> None:
        with self.lock:
            folder = self.folder(mailbox, key)
            if folder.key in (CALENDAR, DELETED_ITEMS):
                raise GraphFault(
                    400, "ErrorCannotDeleteObject", "The default calendar cannot be deleted."
                )
            for event in [e for e in self.everything(mailbox) if e.folder == folder.key]:
                self._purge(mailbox, event)
            del self.folders(mailbox)[folder.key]

    @staticmethod
    def _folder(key: str, name: str, is_calendar: bool) -> Folder:
        return Folder(
            key=key,
            id="AAMkAGVmMDEzMTM4LTZmYWUtNDdkNC1hMDZi" + secrets.token_urlsafe(18),
            name=name,
            entry_id=b"\x00\x00\x00\x00" + secrets.token_bytes(42),
            is_calendar=is_calendar,
        )

    # --- writes -------------------------------------------------------------------------------
    def create(
        self, mailbox: str, body: dict[str, Any], folder: str = CALENDAR
    ) -> tuple[StoredEvent, bool]:
        """Create an event; (event, False) when `transactionId` names an identical earlier one.

        The event resource page: transactionId lets the server avoid redundant POSTs of the same
        event; the Behaviour switches say how long, where, and what a conflict answers.
        """
        with self.lock:
            transaction_id = body.get("transactionId")
            fingerprint = json.dumps(body, sort_keys=True)
            if isinstance(transaction_id, str) and transaction_id:
                known = self._remembered(mailbox, transaction_id)
                if known is not None:
                    event = self._events.get(known.mailbox, {}).get(known.event_id)
                    if (
                        event is not None
                        and known.mailbox == mailbox
                        and known.fingerprint == fingerprint
                    ):
                        return event, False
                    raise duplicate_transaction(self.behaviour.duplicate_transaction_status)
            now = datetime.now(UTC)
            start, start_zone = self._required_time(body, "start")
            end, end_zone = self._required_time(body, "end")
            event = StoredEvent(
                id=_new_id(),
                mailbox=mailbox,
                change_key=_new_change_key(),
                created=now,
                modified=now,
                props=copy.deepcopy(WRITABLE_DEFAULTS),
                start=start,
                end=end,
                start_zone=start_zone,
                end_zone=end_zone,
                transaction_id=transaction_id if isinstance(transaction_id, str) else None,
                create_fingerprint=fingerprint,
                ical_uid="040000008200E00074C5B7101A82E00800000000" + secrets.token_hex(16),
                folder=self.folder(mailbox, folder).key,
            )
            self._apply(event, body, creating=True)
            self._check_times(event)
            event.seq = self._next_seq()
            self._events.setdefault(mailbox, {})[event.id] = event
            if event.transaction_id:
                self._transactions[self._tx_key(mailbox, event.transaction_id)] = _Remembered(
                    event.id, mailbox, fingerprint, self._clock()
                )
            return event, True

    def update(
        self, mailbox: str, event_id: str, body: dict[str, Any], if_match: str | None
    ) -> StoredEvent:
        with self.lock:
            event = self.get(mailbox, event_id)
            self._check_if_match(event, if_match)
            if "transactionId" in body and body["transactionId"] != event.transaction_id:
                # Documented: transactionId cannot change after create (code is the fake's).
                raise bad_request("The transactionId of an event cannot be changed.")
            candidate = copy.deepcopy(event)
            self._apply(candidate, body, creating=False)
            self._check_times(candidate)
            self._touch(candidate)
            self._events[mailbox][event_id] = candidate
            return candidate

    def delete(self, mailbox: str, event_id: str, if_match: str | None = None) -> None:
        """DELETE: to Deleted Items (where a user's delete in Outlook also puts it); from
        there, or with the switch off, the event goes for good."""
        with self.lock:
            event = self.get(mailbox, event_id)
            self._check_if_match(event, if_match)
            if event.folder != DELETED_ITEMS and self.behaviour.delete_moves_to_deleted_items:
                self.move(mailbox, event_id, DELETED_ITEMS)
            else:
                self._purge(mailbox, event)

    def purge(self, mailbox: str, event_id: str) -> None:
        """Gone for good, from whichever folder (emptied Deleted Items, a hard delete)."""
        with self.lock:
            self._purge(mailbox, self.get(mailbox, event_id))

    def move(self, mailbox: str, event_id: str, folder: str) -> StoredEvent:
        """Move the event to another folder; its (immutable) id stays, its change key does not.

        "Obtain immutable identifiers for Outlook resources": the id does not change when the
        item moves to another folder of the same mailbox.
        """
        with self.lock:
            event = self.get(mailbox, event_id)
            target = self.folder(mailbox, folder)
            if target.key == event.folder:
                return event
            was_in_calendar = event.folder == CALENDAR
            event.folder = target.key
            self._touch(event)
            if was_in_calendar:
                # Seen from the calendar (calendarView/delta), the event is removed.
                self._removals.setdefault(mailbox, []).append(
                    Removal(self._next_seq(), event_id, event.start, event.end)
                )
            return event

    def _purge(self, mailbox: str, event: StoredEvent) -> None:
        del self._events[mailbox][event.id]
        if event.transaction_id and self.behaviour.transaction_memory == "event":
            self._transactions.pop(self._tx_key(mailbox, event.transaction_id), None)
        if event.folder == CALENDAR:
            self._removals.setdefault(mailbox, []).append(
                Removal(self._next_seq(), event.id, event.start, event.end)
            )

    def _touch(self, event: StoredEvent) -> None:
        event.change_key = _new_change_key()
        event.modified = datetime.now(UTC)
        event.seq = self._next_seq()

    def _tx_key(self, mailbox: str, transaction_id: str) -> tuple[str, str]:
        scope = "" if self.behaviour.transaction_scope == "application" else mailbox
        return scope, transaction_id

    def _remembered(self, mailbox: str, transaction_id: str) -> _Remembered | None:
        key = self._tx_key(mailbox, transaction_id)
        known = self._transactions.get(key)
        if known is None:
            return None
        memory = self.behaviour.transaction_memory
        if isinstance(memory, int | float) and self._clock() - known.at > memory:
            del self._transactions[key]
            return None
        if memory == "event" and known.event_id not in self._events.get(known.mailbox, {}):
            del self._transactions[key]
            return None
        return known

    # --- reads --------------------------------------------------------------------------------
    def get(self, mailbox: str, event_id: str) -> StoredEvent:
        """An event by id, in whichever folder it is (the id survives moves)."""
        with self.lock:
            event = self._events.get(mailbox, {}).get(event_id)
            if event is None:
                raise item_not_found()
            return event

    def all(self, mailbox: str, folder: str = CALENDAR) -> list[StoredEvent]:
        """The events of one folder (default: the default calendar), oldest first."""
        with self.lock:
            key = self.folder(mailbox, folder).key
            return sorted(
                (e for e in self._events.get(mailbox, {}).values() if e.folder == key),
                key=lambda e: e.created,
            )

    def everything(self, mailbox: str) -> list[StoredEvent]:
        with self.lock:
            return sorted(self._events.get(mailbox, {}).values(), key=lambda e: e.created)

    def with_extended(
        self, mailbox: str, prop_id: str, value: str, folder: str = CALENDAR
    ) -> list[StoredEvent]:
        """Events of the folder whose property `prop_id` has `value`.

        The singleValueLegacyExtendedProperty "get" page: the Name in the id is matched
        case-sensitively, the value case-insensitively.
        """
        key = property_key(prop_id)
        wanted = value.casefold()
        return [
            event
            for event in self.all(mailbox, folder)
            if key in event.extended and event.extended[key][1].casefold() == wanted
        ]

    def in_view(self, mailbox: str, start: datetime, end: datetime) -> list[StoredEvent]:
        """calendarView: the default calendar's events overlapping [start, end)."""
        return [e for e in self.all(mailbox) if e.start < end and e.end > start]

    def changes_since(
        self, mailbox: str, seq: int, start: datetime, end: datetime
    ) -> tuple[list[StoredEvent], list[str], int]:
        """For calendarView/delta: (changed events in the window, removed ids, current seq)."""
        with self.lock:
            changed = [
                e for e in self.all(mailbox) if e.seq > seq and e.start < end and e.end > start
            ]
            removed = [
                r.id
                for r in self._removals.get(mailbox, [])
                if seq > 0 and r.seq > seq and r.start < end and r.end > start
            ]
            # An event moved out of the window since the token is a removal for the client.
            removed += [
                e.id
                for e in self.all(mailbox)
                if e.seq > seq and seq > 0 and not (e.start < end and e.end > start)
            ]
            return changed, removed, self._seq

    # --- rendering ----------------------------------------------------------------------------
    def render(
        self,
        event: StoredEvent,
        *,
        zone: str = "UTC",
        body_type: str | None = None,
        expand: list[str] | None = None,
        select: set[str] | None = None,
    ) -> dict[str, Any]:
        """The event's JSON as Graph answers it (times in `zone`, body as HTML unless text is
        preferred: the event resource page, body "can be in HTML or text", and the
        outlook.body-content-type preference)."""
        body = dict(event.props["body"])
        stored_type = str(body.get("contentType", "text")).lower()
        wanted = (body_type or "html").lower()
        if stored_type == "text" and wanted == "html":
            body = {"contentType": "html", "content": _text_as_html(str(body.get("content")))}
        elif stored_type == "html" and wanted == "text":
            body = {"contentType": "text", "content": _html_as_text(str(body.get("content")))}
        preview = body["content"] if wanted == "text" else _html_as_text(str(body["content"]))
        data: dict[str, Any] = {
            "@odata.etag": event.etag,
            "id": event.id,
            "createdDateTime": format_timestamp(event.created),
            "lastModifiedDateTime": format_timestamp(event.modified),
            "changeKey": event.change_key,
            "originalStartTimeZone": event.start_zone,
            "originalEndTimeZone": event.end_zone,
            "iCalUId": event.ical_uid,
            "type": "singleInstance",
            "isOrganizer": True,
            "isCancelled": False,
            "hasAttachments": False,
            "bodyPreview": str(preview)[:255],
            "organizer": {"emailAddress": {"name": event.mailbox, "address": event.mailbox}},
            **copy.deepcopy(event.props),
            "body": body,
            "start": format_graph_date_time(event.start, zone),
            "end": format_graph_date_time(event.end, zone),
        }
        if event.transaction_id is not None:
            # "Only returned in a response payload if an app has set it" (event resource).
            data["transactionId"] = event.transaction_id
        data["locations"] = [data["location"]] if data["location"].get("displayName") else []
        if select is not None:
            data = {k: v for k, v in data.items() if k in select or k in ("id", "@odata.etag")}
        if expand is not None:
            data["singleValueExtendedProperties"] = self._expanded(event, expand)
        return data

    def _expanded(self, event: StoredEvent, expand: list[str]) -> list[dict[str, str]]:
        wanted = {property_key(i) for i in expand}
        found = [
            {"id": pid, "value": value}
            for key, (pid, value) in event.extended.items()
            if not wanted or key in wanted
        ]
        if PARENT_ENTRY_ID in wanted:
            folder = self.folder(event.mailbox, event.folder)
            found.append(
                {"id": "Binary 0x0e09", "value": base64.b64encode(folder.entry_id).decode()}
            )
        return found

    def render_folder(self, folder: Folder, expand: list[str] | None) -> dict[str, Any]:
        data: dict[str, Any] = {"id": folder.id, "displayName": folder.name}
        if expand is not None and ENTRY_ID in {property_key(i) for i in expand}:
            data["singleValueExtendedProperties"] = [
                {"id": "Binary 0x0fff", "value": base64.b64encode(folder.entry_id).decode()}
            ]
        return data

    # --- internals ----------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @staticmethod
    def _required_time(body: dict[str, Any], field_name: str) -> tuple[datetime, str]:
        if field_name not in body:
            raise bad_request(
                f"Your request can't be completed. The property '{field_name}' is required.",
                "ErrorInvalidRequest",
            )
        return parse_date_time_time_zone(body[field_name], field_name)

    @staticmethod
    def _check_if_match(event: StoredEvent, if_match: str | None) -> None:
        if if_match in (None, "*"):
            return
        if if_match not in (event.etag, event.change_key, f'"{event.change_key}"'):
            raise stale_change_key()

    @staticmethod
    def _check_times(event: StoredEvent) -> None:
        if event.end < event.start:
            raise bad_request(
                "The end time of the event must be later than its start time.",
                "ErrorInvalidRequest",
            )

    def _apply(self, event: StoredEvent, body: dict[str, Any], *, creating: bool) -> None:
        for key, value in body.items():
            if key in ("transactionId", "@odata.type"):
                continue
            if key in ("start", "end"):
                instant, zone = parse_date_time_time_zone(value, key)
                if key == "start":
                    event.start, event.start_zone = instant, zone
                else:
                    event.end, event.end_zone = instant, zone
            elif key == "singleValueExtendedProperties":
                self._apply_extended(event, value)
            elif key in READ_ONLY:
                if not creating:
                    raise bad_request(f"The property '{key}' is read-only and cannot be set.")
            elif key in WRITABLE_DEFAULTS:
                event.props[key] = self._checked(key, value)
            else:
                raise bad_request(
                    f"The property '{key}' does not exist on type 'microsoft.graph.event'. "
                    "Make sure to only use property names that are defined by the type or "
                    "mark the type as open type."
                )

    @staticmethod
    def _checked(key: str, value: Any) -> Any:
        if key == "showAs" and value not in SHOW_AS:
            raise bad_request(f"Requested value '{value}' was not found.")
        if key == "sensitivity" and value not in SENSITIVITY:
            raise bad_request(f"Requested value '{value}' was not found.")
        if key == "categories" and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise bad_request("categories must be a collection of strings.")
        if key == "body" and (
            not isinstance(value, dict)
            or str(value.get("contentType", "text")).lower() not in ("text", "html")
        ):
            raise bad_request("body must be an itemBody with contentType text or html.")
        if key == "location" and not isinstance(value, dict):
            raise bad_request("location must be a location object.")
        return copy.deepcopy(value)

    @staticmethod
    def _apply_extended(event: StoredEvent, value: Any) -> None:
        if not isinstance(value, list):
            raise bad_request("singleValueExtendedProperties must be a collection.")
        for prop in value:
            if not (isinstance(prop, dict) and isinstance(prop.get("id"), str)):
                raise bad_request("A singleValueExtendedProperty needs an id and a value.")
            key = property_key(prop["id"])
            if key.startswith(("binary 0x", "string 0x")):
                raise bad_request("MAPI properties by tag are read-only here.", "ErrorAccessDenied")
            event.extended[key] = (prop["id"], str(prop.get("value", "")))


__all__ = [
    "Behaviour",
    "GraphFault",
    "GraphStore",
    "StoredEvent",
    "parse_expand",
    "parse_extended_filter",
    "property_key",
]
