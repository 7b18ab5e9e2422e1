"""The fake's HTTP side: a threading HTTP/1.1 server that routes Graph and token requests.

A stdlib `ThreadingHTTPServer` rather than an ASGI app because a faithful "lost response" needs
the server to close the connection without writing a byte after the work is done, which an ASGI
framework does not let a handler do. One thread per connection also makes concurrency real: the
per-mailbox limit is observed on requests that are in flight at the same time.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from tests.fakes.graph_errors import (
    GraphFault,
    error_body,
    gateway_timeout,
    mailbox_concurrency,
    service_unavailable,
)
from tests.fakes.graph_store import (
    CALENDAR,
    DELETED_ITEMS,
    Folder,
    StoredEvent,
    parse_expand,
    parse_extended_filter,
)
from tests.fakes.graph_times import parse_query_instant, zone_named

if TYPE_CHECKING:
    from tests.fakes.graph_fake import GraphFake, RequestRecord

_TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
_GRAPH_PATH = re.compile(r"^/v1\.0/users/([^/]+)/(.+?)/?$")
_PREFER = re.compile(r"([\w.\-]+)\s*=\s*\"([^\"]*)\"")
JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
_APPLIED = ("outlook.timezone", "idtype", "outlook.body-content-type")


class FakeGraphServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not hold up stop()
    request_queue_size = 256  # 50 clients connecting at once must not meet a full backlog

    def __init__(self, fake: GraphFake) -> None:
        super().__init__(("127.0.0.1", 0), GraphRequestHandler)
        self.fake = fake


class _Answer:
    def __init__(
        self, status: int, payload: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.payload = payload
        self.headers = headers or {}


class GraphRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Graph and httpx's pool expect
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server: FakeGraphServer

    def log_message(self, format: str, *args: Any) -> None:  # the request log replaces it
        return

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # --- plumbing -----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = {k.lstrip("$").lower(): v[-1] for k, v in parse_qs(url.query).items()}
        request_id = str(uuid.uuid4())
        client_request_id = self.headers.get("client-request-id") or str(uuid.uuid4())
        record = fake.log.begin(self.command, path, url.query, client_request_id)
        for name, value in self.headers.items():  # repeated headers (Prefer) joined, as sent
            known = record.headers.get(name.lower())
            record.headers[name.lower()] = value if known is None else f"{known}, {value}"
        lost = False
        try:
            token_match = _TOKEN_PATH.match(path)
            graph_match = _GRAPH_PATH.match(path)
            if token_match and self.command == "POST":
                answer = fake.token_endpoint(token_match.group(1), raw)
            elif graph_match:
                record.mailbox = graph_match.group(1).lower()
                answer, lost = self._graph(fake, graph_match.group(2), query, raw, record)
            else:
                segment = path.rsplit("/", 1)[-1]
                answer = _fault_answer(
                    GraphFault(
                        400, "BadRequest", f"Resource not found for the segment '{segment}'."
                    )
                )
        except GraphFault as fault:
            answer = _fault_answer(fault)
        if lost:
            # The work is done (or will be), the answer never arrives: close without a byte.
            fake.log.finish(record, None, record.outcome or "lost_response")
            self.close_connection = True
            return
        fake.log.finish(record, answer.status, record.outcome or "ok")
        try:
            self._write(answer, request_id, client_request_id)
        except OSError:
            self.close_connection = True  # the client gave up waiting (its timeout)

    def _write(self, answer: _Answer, request_id: str, client_request_id: str) -> None:
        payload = answer.payload
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            payload = error_body(
                payload["error"]["code"],
                payload["error"]["message"],
                request_id=request_id,
                client_request_id=client_request_id,
            )
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(answer.status)
        self.send_header("request-id", request_id)
        self.send_header("client-request-id", client_request_id)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", JSON_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _preferences(self, combined: bool) -> dict[str, str]:
        found: dict[str, str] = {}
        for header in self.headers.get_all("Prefer") or []:
            pairs = _PREFER.findall(header)
            if not combined:
                pairs = pairs[:1]  # a comma-joined header counts for its first preference
            found.update({k.lower(): v for k, v in pairs})
        return found

    # --- Graph --------------------------------------------------------------------------------
    def _graph(
        self,
        fake: GraphFake,
        rest: str,
        query: dict[str, str],
        raw: bytes,
        record: RequestRecord,
    ) -> tuple[_Answer, bool]:
        caller = fake.authenticate(self.headers.get("Authorization"))
        record.app = caller.app
        mailbox = record.mailbox or ""
        try:
            fake.authorize(caller, self.command)
            fake.check_mailbox(mailbox)
        except GraphFault as fault:
            record.outcome = "access_denied" if fault.status == 403 else "mailbox_unavailable"
            raise
        gated = fake.gate(caller.app, mailbox)
        if gated is not None:
            record.outcome = gated[1]
            return _fault_answer(gated[0]), False
        if not fake.admit(caller.app, mailbox):
            record.outcome = "concurrency_limited"
            limited = mailbox_concurrency(fake.faults.concurrency_retry_after)
            return _fault_answer(fake.throttled(caller.app, mailbox, limited)), False
        try:
            faults = fake.faults
            if faults.latency:
                time.sleep(faults.latency)
            is_create = self.command == "POST" and (
                rest in ("events", "calendar/events")
                or (rest.startswith("calendars/") and rest.endswith("/events"))
            )
            fault_kind = faults.draw(self.command, mailbox, is_create=is_create)
            if fault_kind in ("throttle", "unavailable", "gateway_timeout", "refuse"):
                record.outcome = fault_kind
                error = faults.error_for(fault_kind)
                if fault_kind in ("throttle", "unavailable"):
                    error = fake.throttled(caller.app, mailbox, error)
                return _fault_answer(error), False
            if fault_kind == "late_store":
                body = _json_object(raw)
                fake.store_later(mailbox, body)
                record.outcome = "late_store"
                return self._lost(fake)
            if fault_kind == "slow_create":
                record.outcome = "slow_create"
                time.sleep(faults.slow_create_seconds)  # the client may give up meanwhile
            answer = self._route(fake, mailbox, rest, query, raw)
            if fault_kind == "lose_response" and 200 <= answer.status < 300:
                # The request took effect; only its answer goes missing.
                record.outcome = "lost_response"
                return self._lost(fake)
            return answer, False
        finally:
            # Released before the answer is written: a client that got its answer may send the
            # next request at once, and must not meet its own finished request still counted.
            fake.release(caller.app, mailbox)

    @staticmethod
    def _lost(fake: GraphFake) -> tuple[_Answer, bool]:
        mode = fake.faults.lost_response_mode
        if mode == "504":
            return _fault_answer(gateway_timeout()), False
        if mode == "503":
            return _fault_answer(service_unavailable(fake.faults.retry_after_value())), False
        if mode == "500":
            return _fault_answer(
                GraphFault(500, "InternalServerError", "An internal server error occurred.")
            ), False
        return _Answer(0), True

    def _route(
        self, fake: GraphFake, mailbox: str, rest: str, query: dict[str, str], raw: bytes
    ) -> _Answer:
        prefs = self._preferences(fake.behaviour.combined_prefer)
        zone = prefs.get("outlook.timezone", "UTC")
        zone_named(zone)  # an unknown zone in Prefer is a 400 too
        applied = [f'{k}="{v}"' for k, v in prefs.items() if k in _APPLIED]
        headers = {"Preference-Applied": ", ".join(applied)} if applied else {}
        render: dict[str, Any] = {
            "zone": zone,
            "body_type": prefs.get("outlook.body-content-type"),
            "expand": parse_expand(query.get("expand")),
            "select": set(query["select"].split(",")) if query.get("select") else None,
        }
        parts = rest.split("/")
        command = self.command
        if rest in ("events", "calendar/events"):
            return self._collection(fake, mailbox, CALENDAR, query, raw, render, headers)
        if parts[0] == "calendars" and len(parts) == 3 and parts[2] == "events":
            folder = fake.store.folder(mailbox, parts[1]).key
            return self._collection(fake, mailbox, folder, query, raw, render, headers)
        if parts[0] == "events" and len(parts) == 2:
            return self._item(fake, mailbox, parts[1], render, raw, headers)
        if rest == "calendarView" and command == "GET":
            start = parse_query_instant(query.get("startdatetime"), "startDateTime")
            end = parse_query_instant(query.get("enddatetime"), "endDateTime")
            events = fake.store.in_view(mailbox, start, end)
            return _Answer(200, self._page(fake, mailbox, rest, events, query, render), headers)
        if rest == "calendarView/delta" and command == "GET":
            return _Answer(200, fake.delta(mailbox, query, render), headers)
        if parts[0] == "mailFolders" and len(parts) == 2 and command == "GET":
            found = fake.store.folder(mailbox, parts[1])
            return _Answer(200, fake.store.render_folder(found, render["expand"]), headers)
        if rest == "calendars" and command == "GET":
            folders = [f for f in fake.store.folders(mailbox).values() if f.is_calendar]
            return _Answer(200, {"value": [_calendar(f) for f in folders]}, headers)
        if rest == "calendars" and command == "POST":
            name = str(_json_object(raw).get("name") or "")
            return _Answer(201, _calendar(fake.store.add_calendar(mailbox, name)), headers)
        if parts[0] == "calendars" and len(parts) == 2 and command == "DELETE":
            fake.store.remove_calendar(mailbox, parts[1])
            return _Answer(204)
        if rest in ("events", "calendarView", "calendars") or parts[0] in ("events", "calendars"):
            raise _not_allowed()
        raise GraphFault(400, "BadRequest", f"Resource not found for the segment '{parts[-1]}'.")

    def _collection(
        self,
        fake: GraphFake,
        mailbox: str,
        folder: str,
        query: dict[str, str],
        raw: bytes,
        render: dict[str, Any],
        headers: dict[str, str],
    ) -> _Answer:
        store = fake.store
        if self.command == "POST":
            payload = _json_object(raw)
            # Two arguments for the default calendar: crm_bench wraps `store.create` so.
            if folder == CALENDAR:
                event, _created = store.create(mailbox, payload)
            else:
                event, _created = store.create(mailbox, payload, folder)
            # An identical repeat of a transactionId answers 201 with the first event.
            body = store.render(event, **{**render, "expand": None})
            body["@odata.context"] = fake.context_url(mailbox, entity=True)
            location = f"{fake.graph_url}/users/{quote(mailbox)}/events/{event.id}"
            return _Answer(201, body, {**headers, "Location": location})
        if self.command == "GET":
            # "List events": the user's default calendar (or the calendar named in the path),
            # never Deleted Items nor another calendar.
            if query.get("filter"):
                prop_id, value = parse_extended_filter(query["filter"])
                events = store.with_extended(mailbox, prop_id, value, folder)
            else:
                events = store.all(mailbox, folder)
            path = "events" if folder == CALENDAR else f"calendars/{folder}/events"
            return _Answer(200, self._page(fake, mailbox, path, events, query, render), headers)
        raise _not_allowed()

    def _item(
        self,
        fake: GraphFake,
        mailbox: str,
        event_id: str,
        render: dict[str, Any],
        raw: bytes,
        headers: dict[str, str],
    ) -> _Answer:
        store = fake.store
        event = store.get(mailbox, event_id)
        if event.folder == DELETED_ITEMS and fake.behaviour.deleted_item_get == "not_found":
            raise GraphFault(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        if_match = self.headers.get("If-Match")
        if self.command == "GET":
            body = store.render(event, **render)
            return _Answer(
                200, {"@odata.context": fake.context_url(mailbox, True), **body}, headers
            )
        if self.command == "PATCH":
            updated = store.update(mailbox, event_id, _json_object(raw), if_match)
            body = store.render(updated, **{**render, "expand": None})
            return _Answer(
                200, {"@odata.context": fake.context_url(mailbox, True), **body}, headers
            )
        if self.command == "DELETE":
            store.delete(mailbox, event_id, if_match)
            return _Answer(204)
        raise _not_allowed()

    @staticmethod
    def _page(
        fake: GraphFake,
        mailbox: str,
        path: str,
        events: list[StoredEvent],
        query: dict[str, str],
        render: dict[str, Any],
    ) -> dict[str, Any]:
        top = _int_param(query, "top", 10)  # Graph pages by 10 unless $top says more
        skip = _int_param(query, "skip", 0)
        page = events[skip : skip + top]
        answer: dict[str, Any] = {
            "@odata.context": fake.context_url(mailbox, entity=False),
            "value": [fake.store.render(e, **render) for e in page],
        }
        if skip + top < len(events):
            params = {_PLAIN.get(k, f"${k}"): v for k, v in query.items()}
            params["$skip"] = str(skip + top)
            answer["@odata.nextLink"] = (
                f"{fake.graph_url}/users/{quote(mailbox)}/{path}?{urlencode(params)}"
            )
        return answer


# Query parameters without a `$` (calendarView's window).
_PLAIN = {"startdatetime": "startDateTime", "enddatetime": "endDateTime"}


def _calendar(folder: Folder) -> dict[str, Any]:
    return {
        "id": folder.id,
        "name": folder.name,
        "isDefaultCalendar": folder.key == CALENDAR,
        "canEdit": True,
    }


def _fault_answer(fault: GraphFault) -> _Answer:
    return _Answer(
        fault.status, {"error": {"code": fault.code, "message": fault.message}}, fault.headers
    )


def _not_allowed() -> GraphFault:
    return GraphFault(405, "ErrorInvalidRequest", "The OData request is not supported.")


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise GraphFault(400, "BadRequest", "Empty Payload. JSON content expected.")
    try:
        value = json.loads(raw)
    except ValueError:
        raise GraphFault(400, "BadRequest", "Unable to read JSON request payload.") from None
    if not isinstance(value, dict):
        raise GraphFault(400, "BadRequest", "The request payload must be a JSON object.")
    return value


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    try:
        value = int(query.get(name, default))
    except ValueError:
        raise GraphFault(400, "BadRequest", f"Invalid ${name} value.") from None
    if value < 0 or (name == "top" and not 1 <= value <= 1000):
        raise GraphFault(400, "BadRequest", f"Invalid ${name} value.")
    return value


__all__ = ["FakeGraphServer", "parse_query_instant"]
