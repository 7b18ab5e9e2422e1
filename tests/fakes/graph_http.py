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

from tests.fakes.graph_errors import GraphFault, error_body, mailbox_concurrency
from tests.fakes.graph_store import parse_expand, parse_extended_filter
from tests.fakes.graph_times import parse_query_instant, zone_named

if TYPE_CHECKING:
    from tests.fakes.graph_fake import GraphFake

_TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
_GRAPH_PATH = re.compile(r"^/v1\.0/users/([^/]+)/(events|calendarView/delta)(?:/([^/]+))?$")
_PREFER = re.compile(r"([\w.\-]+)\s*=\s*\"([^\"]*)\"")
JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"


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
        record.headers = {k.lower(): v for k, v in self.headers.items()}
        mailbox: str | None = None
        lost = False
        try:
            token_match = _TOKEN_PATH.match(path)
            graph_match = _GRAPH_PATH.match(path)
            if token_match and self.command == "POST":
                answer = fake.token_endpoint(token_match.group(1), raw)
            elif graph_match:
                mailbox = graph_match.group(1).lower()
                record.mailbox = mailbox
                answer, lost = self._graph(fake, graph_match, query, raw, record)
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
            # The work is done, the answer never arrives: close without writing a byte.
            fake.log.finish(record, None, "lost_response")
            self.close_connection = True
            return
        fake.log.finish(record, answer.status, record.outcome or "ok")
        self._write(answer, request_id, client_request_id)

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

    def _preferences(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for header in self.headers.get_all("Prefer") or []:
            found.update({k.lower(): v for k, v in _PREFER.findall(header)})
        return found

    # --- Graph --------------------------------------------------------------------------------
    def _graph(
        self, fake: GraphFake, match: re.Match[str], query: dict[str, str], raw: bytes, record: Any
    ) -> tuple[_Answer, bool]:
        fake.authenticate(self.headers.get("Authorization"))
        mailbox = match.group(1).lower()
        fake.check_mailbox(mailbox)
        if not fake.admit(mailbox):
            record.outcome = "concurrency_limited"
            return _fault_answer(mailbox_concurrency(fake.faults.concurrency_retry_after)), False
        try:
            if fake.faults.latency:
                time.sleep(fake.faults.latency)
            is_create = self.command == "POST" and match.group(3) is None
            fault = fake.faults.draw(self.command, mailbox, is_create=is_create)
            if fault is not None and fault != "lose_response":
                record.outcome = fault
                return _fault_answer(fake.faults.error_for(fault)), False
            answer = self._route(fake, match, query, raw)
            if fault is not None and 200 <= answer.status < 300:
                # The request took effect; only its answer goes missing.
                record.outcome = "lost_response"
                if fake.faults.lost_response_mode == "504":
                    return _fault_answer(fake.faults.error_for("gateway_timeout")), False
                return answer, True
            return answer, False
        finally:
            # Released before the answer is written: a client that got its answer may send the
            # next request at once, and must not meet its own finished request still counted.
            fake.release(mailbox)

    def _route(
        self, fake: GraphFake, match: re.Match[str], query: dict[str, str], raw: bytes
    ) -> _Answer:
        mailbox, collection, event_id = match.group(1).lower(), match.group(2), match.group(3)
        prefs = self._preferences()
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
        store = fake.store
        if collection == "calendarView/delta":
            if self.command != "GET" or event_id is not None:
                raise _not_allowed()
            return _Answer(200, fake.delta(mailbox, query, render), headers)
        if event_id is None:
            if self.command == "POST":
                event, _created = store.create(mailbox, _json_object(raw))
                # An identical repeat of a transactionId answers 201 with the first event.
                body = store.render(event, **{**render, "expand": None})
                body["@odata.context"] = fake.context_url(mailbox, entity=True)
                location = f"{fake.graph_url}/users/{quote(mailbox)}/events/{event.id}"
                return _Answer(201, body, {**headers, "Location": location})
            if self.command == "GET":
                return _Answer(200, self._list(fake, mailbox, query, render), headers)
            raise _not_allowed()
        if_match = self.headers.get("If-Match")
        if self.command == "GET":
            body = store.render(store.get(mailbox, event_id), **render)
            return _Answer(
                200, {"@odata.context": fake.context_url(mailbox, True), **body}, headers
            )
        if self.command == "PATCH":
            event = store.update(mailbox, event_id, _json_object(raw), if_match)
            body = store.render(event, **{**render, "expand": None})
            return _Answer(
                200, {"@odata.context": fake.context_url(mailbox, True), **body}, headers
            )
        if self.command == "DELETE":
            store.delete(mailbox, event_id, if_match)
            return _Answer(204)
        raise _not_allowed()

    def _list(
        self, fake: GraphFake, mailbox: str, query: dict[str, str], render: dict[str, Any]
    ) -> dict[str, Any]:
        store = fake.store
        if query.get("filter"):
            prop_id, value = parse_extended_filter(query["filter"])
            events = store.with_extended(mailbox, prop_id, value)
        else:
            events = store.all(mailbox)
        top = _int_param(query, "top", 10)  # Graph pages /events by 10 unless $top says more
        skip = _int_param(query, "skip", 0)
        page = events[skip : skip + top]
        answer: dict[str, Any] = {
            "@odata.context": fake.context_url(mailbox, entity=False),
            "value": [store.render(e, **render) for e in page],
        }
        if skip + top < len(events):
            params = {f"${k}": v for k, v in query.items()}
            params["$skip"] = str(skip + top)
            answer["@odata.nextLink"] = (
                f"{fake.graph_url}/users/{quote(mailbox)}/events?{urlencode(params)}"
            )
        return answer


_APPLIED = ("outlook.timezone", "idtype", "outlook.body-content-type")


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
