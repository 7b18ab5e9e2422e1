"""The fake's mailboxes: calendar events with Graph's create/read/update/delete semantics.

Pure state and rules, no HTTP: the request handler (graph_http.py) parses requests and calls in
here, and the test controls (graph_fake.py) read and change the same state. Thread-safe: every
public method takes the store's lock, because the HTTP server answers requests in threads.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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

_ANY_FILTER = re.compile(
    r"^\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'"
    r"\s+and\s+\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$",
    re.IGNORECASE,
)
_EXPAND = re.compile(r"^\s*singleValueExtendedProperties(?:\(\$filter=(.*)\))?\s*$", re.I)
_ID_EQ = re.compile(r"id\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)


def _new_id() -> str:
    # Opaque, URL-safe, immutable: the shape of an ImmutableId, not its content.
    return "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A" + secrets.token_urlsafe(24)


def _new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(16)).decode()


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
    extended: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower(id) → (id, value)
    ical_uid: str = ""
    seq: int = 0

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'


@dataclass(frozen=True)
class Removal:
    seq: int
    id: str
    start: datetime
    end: datetime


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

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._events: dict[str, dict[str, StoredEvent]] = {}
        self._transactions: dict[tuple[str, str], str] = {}
        self._removals: dict[str, list[Removal]] = {}
        self._seq = 0

    # --- writes -------------------------------------------------------------------------------
    def create(self, mailbox: str, body: dict[str, Any]) -> tuple[StoredEvent, bool]:
        """Create an event; (event, False) when `transactionId` names an identical earlier one."""
        with self.lock:
            transaction_id = body.get("transactionId")
            fingerprint = json.dumps(body, sort_keys=True)
            if isinstance(transaction_id, str) and transaction_id:
                known = self._transactions.get((mailbox, transaction_id))
                event = self._events.get(mailbox, {}).get(known or "")
                if event is not None:
                    if event.create_fingerprint != fingerprint:
                        raise duplicate_transaction()
                    return event, False
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
            )
            self._apply(event, body, creating=True)
            self._check_times(event)
            event.seq = self._next_seq()
            self._events.setdefault(mailbox, {})[event.id] = event
            if event.transaction_id:
                self._transactions[(mailbox, event.transaction_id)] = event.id
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
            candidate.change_key = _new_change_key()
            candidate.modified = datetime.now(UTC)
            candidate.seq = self._next_seq()
            self._events[mailbox][event_id] = candidate
            return candidate

    def delete(self, mailbox: str, event_id: str, if_match: str | None = None) -> None:
        with self.lock:
            event = self.get(mailbox, event_id)
            self._check_if_match(event, if_match)
            del self._events[mailbox][event_id]
            if event.transaction_id:
                # The fake forgets the transactionId with the event: Graph documents nothing
                # about reuse after a delete, so clients must not rely on either behaviour.
                self._transactions.pop((mailbox, event.transaction_id), None)
            self._removals.setdefault(mailbox, []).append(
                Removal(self._next_seq(), event_id, event.start, event.end)
            )

    # --- reads --------------------------------------------------------------------------------
    def get(self, mailbox: str, event_id: str) -> StoredEvent:
        with self.lock:
            event = self._events.get(mailbox, {}).get(event_id)
            if event is None:
                raise item_not_found()
            return event

    def all(self, mailbox: str) -> list[StoredEvent]:
        with self.lock:
            return sorted(self._events.get(mailbox, {}).values(), key=lambda e: e.created)

    def with_extended(self, mailbox: str, prop_id: str, value: str) -> list[StoredEvent]:
        key = prop_id.lower()
        return [
            event
            for event in self.all(mailbox)
            if key in event.extended and event.extended[key][1] == value
        ]

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
        """The event's JSON as Graph answers it (times in `zone`, body as html unless asked)."""
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
            "transactionId": event.transaction_id,
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
        data["locations"] = [data["location"]] if data["location"].get("displayName") else []
        if select is not None:
            data = {k: v for k, v in data.items() if k in select or k in ("id", "@odata.etag")}
        if expand is not None:
            wanted_ids = {i.lower() for i in expand}
            data["singleValueExtendedProperties"] = [
                {"id": pid, "value": value}
                for key, (pid, value) in event.extended.items()
                if not wanted_ids or key in wanted_ids
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
            event.extended[prop["id"].lower()] = (prop["id"], str(prop.get("value", "")))


__all__ = ["GraphFault", "GraphStore", "StoredEvent", "parse_expand", "parse_extended_filter"]
