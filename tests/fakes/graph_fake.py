"""A faithful local fake of Microsoft Graph calendar events, for tests only.

Microsoft cannot be reached from here, so this is the one stand-in the project allows. It is a
real HTTP server on 127.0.0.1 (random port, background threads) that speaks the part of Graph
and of the Microsoft identity platform that calendar-sync uses, with the behaviours written down
in docs/graph.md:

HTTP
    POST /{tenant}/oauth2/v2.0/token            client_credentials → bearer token
    POST /v1.0/users/{upn}/events               201 + event (transactionId: identical repeat →
                                                same event; different body → 400
                                                ErrorDuplicateTransactionId)
    GET  /v1.0/users/{upn}/events               $filter=singleValueExtendedProperties/Any(...),
                                                $top (default 10) / $skip → @odata.nextLink,
                                                $select, $expand=singleValueExtendedProperties(...)
    GET|PATCH|DELETE /v1.0/users/{upn}/events/{id}
                                                404 ErrorItemNotFound, 412 ErrorIrresolvableConflict
                                                on a stale If-Match
    GET  /v1.0/users/{upn}/calendarView/delta   startDateTime/endDateTime, then $deltatoken;
                                                deletions come as @removed
    Prefer: outlook.timezone, outlook.body-content-type, IdType="ImmutableId" (echoed in
    Preference-Applied). Without a valid bearer token: 401 InvalidAuthenticationToken.

Python controls (no HTTP): `events(upn)`, `event(upn, id)`, `create_as_user`, `update_as_user`,
`delete_as_user` (a user acting in Outlook), `faults` (see `Faults`), `log` / `requests(...)`,
`max_concurrency_seen(upn)`, `concurrency_rejections(upn)`, `token_requests`, `expire_tokens()`.

A *lost create response* (fault `lose_response`): the event IS created, then the server closes
the connection without writing a byte. An httpx client sees `httpx.RemoteProtocolError`
("Server disconnected without sending a response"), the way a dropped proxy connection looks.
With `faults.lost_response_mode = "504"` it answers 504 instead, after creating the event.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, quote

from tests.fakes.graph_errors import (
    GraphFault,
    gateway_timeout,
    service_unavailable,
    too_many_requests,
)
from tests.fakes.graph_http import FakeGraphServer, _Answer, parse_query_instant
from tests.fakes.graph_store import GraphStore

FaultKind = Literal["throttle", "unavailable", "gateway_timeout", "lose_response"]
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass
class _Scripted:
    kind: FaultKind
    method: str | None
    mailbox: str | None


@dataclass
class Faults:
    """Fault injection. Ratios draw from a seeded RNG, so a run is reproducible.

    `fail_next(kind, ...)` queues exact faults for the next matching requests, before ratios.
    """

    throttle_ratio: float = 0.0  # 429 TooManyRequests with Retry-After
    unavailable_ratio: float = 0.0  # 503 serviceNotAvailable with Retry-After
    lose_create_response_ratio: float = 0.0  # create done, answer lost (see module doc)
    lost_response_mode: Literal["drop", "504"] = "drop"
    latency: float = 0.0  # seconds added to every Graph request, inside the concurrency window
    retry_after: str = "0.05"  # Graph sends seconds; fractional values are allowed
    concurrency_limit: int = 4  # Outlook's per app-and-mailbox limit
    concurrency_retry_after: str = "1"
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _queue: deque[_Scripted] = field(init=False, repr=False, default_factory=deque)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def fail_next(
        self,
        kind: FaultKind,
        times: int = 1,
        *,
        method: str | None = None,
        mailbox: str | None = None,
    ) -> None:
        with self._lock:
            for _ in range(times):
                self._queue.append(_Scripted(kind, method, mailbox.lower() if mailbox else None))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self.throttle_ratio = self.unavailable_ratio = self.lose_create_response_ratio = 0.0
            self.latency = 0.0

    def draw(self, method: str, mailbox: str, *, is_create: bool) -> FaultKind | None:
        with self._lock:
            for scripted in self._queue:
                if scripted.method in (None, method) and scripted.mailbox in (None, mailbox):
                    self._queue.remove(scripted)
                    return scripted.kind
            roll = self._rng.random()
            if roll < self.throttle_ratio:
                return "throttle"
            if roll < self.throttle_ratio + self.unavailable_ratio:
                return "unavailable"
            if is_create and self._rng.random() < self.lose_create_response_ratio:
                return "lose_response"
            return None

    def error_for(self, kind: FaultKind) -> GraphFault:
        if kind == "throttle":
            return too_many_requests(self.retry_after)
        if kind == "unavailable":
            return service_unavailable(self.retry_after)
        return gateway_timeout()


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    client_request_id: str
    started: float  # time.monotonic()
    at: datetime
    mailbox: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # as sent (names lower-cased)
    finished: float | None = None
    status: int | None = None  # None: the connection was dropped without an answer
    outcome: str | None = None  # ok | throttle | unavailable | gateway_timeout |
    #                               concurrency_limited | lost_response


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[RequestRecord] = []

    def begin(self, method: str, path: str, query: str, client_request_id: str) -> RequestRecord:
        record = RequestRecord(
            method, path, query, client_request_id, time.monotonic(), datetime.now(UTC)
        )
        with self._lock:
            self.records.append(record)
        return record

    def finish(self, record: RequestRecord, status: int | None, outcome: str) -> None:
        record.finished, record.status, record.outcome = time.monotonic(), status, outcome


class GraphFake:
    def __init__(
        self,
        *,
        tenant: str = "contoso-test-tenant",
        client_id: str = "calendar-sync-test-app",
        client_secret: str = "test-secret",
        seed: int = 0,
        mailboxes: set[str] | None = None,
        token_lifetime: int = 3599,
    ) -> None:
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.mailboxes = {m.lower() for m in mailboxes} if mailboxes is not None else None
        self.token_lifetime = token_lifetime
        self.faults = Faults(seed=seed)
        self.store = GraphStore()
        self.log = RequestLog()
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # token → monotonic expiry
        self._deltas: dict[str, tuple[str, datetime, datetime, int]] = {}
        self._inflight: dict[str, int] = {}
        self._peak: dict[str, int] = {}
        self._rejected: dict[str, int] = {}
        self.token_requests = 0
        self._server: FakeGraphServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> GraphFake:
        self._server = FakeGraphServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GraphFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/{self.tenant}/oauth2/v2.0/token"

    def context_url(self, mailbox: str, entity: bool) -> str:
        suffix = "/$entity" if entity else ""
        return f"{self.graph_url}/$metadata#users('{quote(mailbox)}')/events{suffix}"

    # --- test controls ------------------------------------------------------------------------
    def events(self, upn: str) -> list[dict[str, Any]]:
        """Every event in the mailbox, in UTC, body as stored, extended properties included."""
        return [
            self.store.render(e, body_type=e.props["body"].get("contentType"), expand=[])
            for e in self.store.all(upn.lower())
        ]

    def crm_events(self, upn: str) -> dict[str, list[dict[str, Any]]]:
        """The mailbox's events tagged with an activity id, by id (a list: duplicates show)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for event in self.events(upn):
            for prop in event.get("singleValueExtendedProperties") or []:
                found.setdefault(prop["value"], []).append(event)
        return found

    def event(self, upn: str, event_id: str) -> dict[str, Any]:
        e = self.store.get(upn.lower(), event_id)
        return self.store.render(e, body_type=e.props["body"].get("contentType"), expand=[])

    def create_as_user(self, upn: str, body: dict[str, Any]) -> str:
        """A user creates an event in Outlook (no transactionId, no extended property)."""
        return self.store.create(upn.lower(), body)[0].id

    def update_as_user(self, upn: str, event_id: str, changes: dict[str, Any]) -> None:
        """A user edits the event in Outlook: new changeKey, so our etag goes stale."""
        self.store.update(upn.lower(), event_id, changes, None)

    def delete_as_user(self, upn: str, event_id: str) -> None:
        """A user deletes the event in Outlook."""
        self.store.delete(upn.lower(), event_id)

    def requests(self, upn: str | None = None, method: str | None = None) -> list[RequestRecord]:
        return [
            r
            for r in list(self.log.records)
            if (upn is None or r.mailbox == upn.lower()) and (method is None or r.method == method)
        ]

    def max_concurrency_seen(self, upn: str) -> int:
        """Peak of requests in flight for the mailbox, counting ones refused for the limit."""
        with self._lock:
            return self._peak.get(upn.lower(), 0)

    def concurrency_rejections(self, upn: str) -> int:
        with self._lock:
            return self._rejected.get(upn.lower(), 0)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def expire_delta_tokens(self) -> None:
        with self._lock:
            self._deltas.clear()

    # --- used by the request handler ----------------------------------------------------------
    def token_endpoint(self, tenant: str, raw: bytes) -> _Answer:
        form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        with self._lock:
            self.token_requests += 1
        if form.get("grant_type") != "client_credentials":
            return _aad_error(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        if tenant != self.tenant:
            return _aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("client_id") != self.client_id:
            return _aad_error(
                400,
                "unauthorized_client",
                700016,
                "Application with identifier "
                f"'{form.get('client_id')}' was not found in the directory.",
            )
        if form.get("client_secret") != self.client_secret:
            return _aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if form.get("scope") != GRAPH_SCOPE:
            return _aad_error(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope "
                f"{form.get('scope')} is not valid. Client credential flows must "
                "have a scope value with /.default suffixed to the resource "
                "identifier.",
            )
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0." + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
        return _Answer(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            },
        )

    def authenticate(self, header: str | None) -> None:
        if not header or not header.startswith("Bearer "):
            raise GraphFault(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self._lock:
            expiry = self._tokens.get(header.removeprefix("Bearer ").strip())
        if expiry is None:
            raise GraphFault(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
        if expiry <= time.monotonic():
            raise GraphFault(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )

    def check_mailbox(self, mailbox: str) -> None:
        if self.mailboxes is not None and mailbox not in self.mailboxes:
            raise GraphFault(404, "ErrorInvalidUser", f"The requested user '{mailbox}' is invalid.")

    def admit(self, mailbox: str) -> bool:
        """Count a request in; False (and not counted) when it would pass the limit."""
        with self._lock:
            now = self._inflight.get(mailbox, 0) + 1
            self._peak[mailbox] = max(self._peak.get(mailbox, 0), now)
            if now > self.faults.concurrency_limit:
                self._rejected[mailbox] = self._rejected.get(mailbox, 0) + 1
                return False
            self._inflight[mailbox] = now
            return True

    def release(self, mailbox: str) -> None:
        with self._lock:
            self._inflight[mailbox] -= 1

    def delta(self, mailbox: str, query: dict[str, str], render: dict[str, Any]) -> dict[str, Any]:
        token = query.get("deltatoken")
        if token is not None:
            with self._lock:
                state = self._deltas.get(token)
            if state is None or state[0] != mailbox:
                raise GraphFault(410, "SyncStateNotFound", "The sync state is invalid or expired.")
            _mb, start, end, seq = state
        else:
            start = parse_query_instant(query.get("startdatetime"), "startDateTime")
            end = parse_query_instant(query.get("enddatetime"), "endDateTime")
            seq = 0
        changed, removed, now = self.store.changes_since(mailbox, seq, start, end)
        value: list[dict[str, Any]] = [self.store.render(e, **render) for e in changed]
        value += [
            {"@odata.type": "#microsoft.graph.event", "id": i, "@removed": {"reason": "deleted"}}
            for i in removed
        ]
        new_token = secrets.token_urlsafe(16)
        with self._lock:
            self._deltas[new_token] = (mailbox, start, end, now)
        link = f"{self.graph_url}/users/{quote(mailbox)}/calendarView/delta?$deltatoken={new_token}"
        return {
            "@odata.context": self.context_url(mailbox, False),
            "value": value,
            "@odata.deltaLink": link,
        }


def _aad_error(status: int, error: str, code: int, description: str) -> _Answer:
    """The identity platform's error shape (not Graph's): error, error_description, codes."""
    return _Answer(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description}",
            "error_codes": [code],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": secrets.token_hex(16),
            "correlation_id": secrets.token_hex(16),
        },
    )


def start_of(event: dict[str, Any]) -> datetime:
    """When a rendered event starts (the fake renders in UTC)."""
    start = event["start"]
    assert start["timeZone"] == "UTC", start
    return datetime.fromisoformat(start["dateTime"][:26]).replace(tzinfo=UTC)
