"""A local fake of Microsoft Graph calendar events, as strict as Graph, for tests only.

Microsoft cannot be reached from here, so this is the one stand-in the project allows. It is a
real HTTP server on 127.0.0.1 (random port, background threads) that speaks the part of Graph
and of the Microsoft identity platform that calendar-sync uses, with the behaviours written down
in docs/graph.md, each from a documentation page (named where it is modelled). Where the
documentation is silent the fake follows a switch (`Behaviour`, graph_store.py), and
docs/graph.md lists those with their settings.

HTTP
    POST /{tenant}/oauth2/v2.0/token            client_credentials → bearer token carrying
                                                the app's roles (Calendars.ReadWrite checked)
    POST /v1.0/users/{upn}/events               201 + event, in the default calendar
                                                (transactionId: identical repeat → same event;
                                                other body → ErrorDuplicateTransactionId)
    GET  /v1.0/users/{upn}/events               the DEFAULT calendar only: $filter on an
    GET  /v1.0/users/{upn}/calendar/events      extended property (name case-sensitive, value
                                                not), $top (default 10) / $skip → nextLink,
                                                $select, $expand=singleValueExtendedProperties
    GET|PATCH|DELETE /v1.0/users/{upn}/events/{id}
                                                any folder (the immutable id survives moves);
                                                DELETE moves to Deleted Items first; 404
                                                ErrorItemNotFound, 412 on a stale If-Match
    GET  /v1.0/users/{upn}/calendarView         the default calendar in a window
    GET  /v1.0/users/{upn}/calendarView/delta   startDateTime/endDateTime, then $deltatoken
    GET  /v1.0/users/{upn}/mailFolders/{id}     e.g. deleteditems, PidTagEntryId expandable
    GET|POST /v1.0/users/{upn}/calendars, POST|GET …/calendars/{id}/events,
    DELETE …/calendars/{id}                     secondary calendars
    Prefer: outlook.timezone, outlook.body-content-type (bodies are HTML otherwise),
    IdType="ImmutableId" (echoed in Preference-Applied).

Limits (the throttling limits page, Outlook service limits): per application and mailbox,
4 concurrent requests (429 MailboxConcurrency) and 10,000 requests per 10 minutes, counted
across every client of the application; throttling answers carry a whole-second Retry-After
(30–300 s unless a test fixes `faults.retry_after`), and asking again before it passed is
throttled again. Time is the fake's `clock` (graph_clock.py), which tests may run faster.

Mailboxes: unknown ones (when `mailboxes` is given) and those a test makes unavailable answer
404 ErrorInvalidUser / 404 MailboxNotEnabledForRESTAPI / 403 ErrorAccessDenied to every
request, whatever it asks for.

Python controls (no HTTP): `events(upn)` (the default calendar, what the user sees),
`deleted_items(upn)`, `all_events(upn)`, `event(upn, id)`, `folder_of(upn, id)`,
`create_as_user`, `update_as_user`, `delete_as_user` (to Deleted Items), `restore_as_user`,
`purge_as_user`, `mailbox_unavailable` / `mailbox_available`, `add_app`, `faults`,
`behaviour`, `log` / `requests(...)`, `max_concurrency_seen(upn)`,
`concurrency_rejections(upn)`, `token_requests`, `expire_tokens()`, `pending_stores()`.

Lost answers (`faults`): `lose_response` creates, then the answer is lost as
`lost_response_mode` says ("drop": the connection closes without a byte, which httpx reports as
RemoteProtocolError; "504"/"503"/"500": that error after the create); `late_store` answers the
same way but stores the event only later (`late_store_delay` fake seconds); `slow_create`
works `slow_create_seconds` (wall clock) before it creates and answers, so a client with a
shorter timeout gives up while the server still works.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, quote

from tests.fakes.graph_clock import FakeClock
from tests.fakes.graph_errors import (
    GraphFault,
    access_denied,
    gateway_timeout,
    invalid_user,
    mailbox_concurrency,
    mailbox_not_enabled,
    request_limit,
    service_unavailable,
    too_many_requests,
)
from tests.fakes.graph_http import FakeGraphServer, _Answer, parse_query_instant
from tests.fakes.graph_store import CALENDAR, DELETED_ITEMS, Behaviour, GraphStore

FaultKind = Literal[
    "throttle",
    "unavailable",
    "gateway_timeout",
    "lose_response",
    "late_store",
    "slow_create",
    "refuse",
]
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
READ_WRITE = "Calendars.ReadWrite"


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
    late_store_ratio: float = 0.0  # answer lost, event stored `late_store_delay` later
    slow_create_ratio: float = 0.0  # the server works `slow_create_seconds` first
    lost_response_mode: Literal["drop", "504", "503", "500"] = "drop"
    late_store_delay: float = 5.0  # fake seconds (at most; drawn between a fifth and all)
    slow_create_seconds: float = 1.0  # wall-clock seconds
    latency: float = 0.0  # seconds added to every Graph request, inside the concurrency window
    # None: Graph's whole seconds, drawn from `retry_after_range`; a string: sent as is (a
    # test that wants fast retries without a fast clock; Graph never sends fractions here).
    retry_after: str | None = None
    retry_after_range: tuple[int, int] = (30, 300)
    enforce_retry_after: bool = True  # asking again too early is throttled again
    concurrency_limit: int = 4  # Outlook's per app-and-mailbox limit
    concurrency_retry_after: str = "1"
    requests_per_window: int = 10_000  # Outlook's per app-and-mailbox request limit ...
    window_seconds: float = 600.0  # ... per 10 minutes
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
            self.late_store_ratio = self.slow_create_ratio = 0.0
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
            if not is_create:
                return None
            roll = self._rng.random()
            for kind, ratio in (
                ("lose_response", self.lose_create_response_ratio),
                ("late_store", self.late_store_ratio),
                ("slow_create", self.slow_create_ratio),
            ):
                if roll < ratio:
                    return kind  # type: ignore[return-value]
                roll -= ratio
            return None

    def retry_after_value(self) -> str:
        """The Retry-After of a throttling answer: whole seconds, as Outlook sends them."""
        if self.retry_after is not None:
            return self.retry_after
        with self._lock:
            return str(self._rng.randint(*self.retry_after_range))

    def late_delay(self) -> float:
        with self._lock:
            return self.late_store_delay * self._rng.uniform(0.2, 1.0)

    def error_for(self, kind: FaultKind) -> GraphFault:
        if kind == "refuse":
            # An entry Graph will never take as it is (what a 400 about the payload says).
            return GraphFault(400, "ErrorInvalidRequest", "The request is invalid.")
        if kind == "throttle":
            return too_many_requests(self.retry_after_value())
        if kind == "unavailable":
            return service_unavailable(self.retry_after_value())
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
    app: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # as sent (names lower-cased)
    finished: float | None = None
    status: int | None = None  # None: the connection was dropped without an answer
    outcome: str | None = None  # ok | throttle | unavailable | gateway_timeout | blocked |
    #                  concurrency_limited | request_limited | lost_response | late_store |
    #                  slow_create | refuse | mailbox_unavailable | access_denied


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


@dataclass
class _App:
    secret: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Caller:
    """Who a valid bearer token speaks for."""

    app: str
    roles: frozenset[str]


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
        clock: FakeClock | None = None,
        behaviour: Behaviour | None = None,
        roles: tuple[str, ...] = (READ_WRITE,),
    ) -> None:
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.mailboxes = {m.lower() for m in mailboxes} if mailboxes is not None else None
        self.token_lifetime = token_lifetime
        self.clock = clock or FakeClock()
        self.behaviour = behaviour or Behaviour()
        self.faults = Faults(seed=seed)
        self.store = GraphStore(self.behaviour, self.clock.monotonic)
        self.log = RequestLog()
        self.apps: dict[str, _App] = {client_id: _App(client_secret, frozenset(roles))}
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[Caller, float]] = {}  # token → (caller, monotonic expiry)
        self._deltas: dict[str, tuple[str, datetime, datetime, int]] = {}
        self._inflight: dict[tuple[str, str], int] = {}
        self._peak: dict[tuple[str, str], int] = {}
        self._rejected: dict[tuple[str, str], int] = {}
        self._window: dict[tuple[str, str], deque[float]] = {}
        self._blocked: dict[tuple[str, str], float] = {}  # throttled until (fake clock)
        self._unavailable: dict[str, GraphFault] = {}
        self._pending = 0
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

    def context_url(self, mailbox: str, entity: bool, collection: str = "events") -> str:
        suffix = "/$entity" if entity else ""
        return f"{self.graph_url}/$metadata#users('{quote(mailbox)}')/{collection}{suffix}"

    # --- test controls ------------------------------------------------------------------------
    def events(self, upn: str) -> list[dict[str, Any]]:
        """The default calendar's events (what the user sees), in UTC, body as stored,
        extended properties included."""
        return [self._as_stored(e) for e in self.store.all(upn.lower())]

    def deleted_items(self, upn: str) -> list[dict[str, Any]]:
        return [self._as_stored(e) for e in self.store.all(upn.lower(), DELETED_ITEMS)]

    def all_events(self, upn: str) -> list[dict[str, Any]]:
        """Every event of the mailbox, whichever folder it is in."""
        return [self._as_stored(e) for e in self.store.everything(upn.lower())]

    def _as_stored(self, event: Any) -> dict[str, Any]:
        return self.store.render(event, body_type=event.props["body"].get("contentType"), expand=[])

    def crm_events(self, upn: str) -> dict[str, list[dict[str, Any]]]:
        """The default calendar's events tagged with an activity id, by id (duplicates show)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for event in self.events(upn):
            for prop in event.get("singleValueExtendedProperties") or []:
                found.setdefault(prop["value"], []).append(event)
        return found

    def event(self, upn: str, event_id: str) -> dict[str, Any]:
        return self._as_stored(self.store.get(upn.lower(), event_id))

    def folder_of(self, upn: str, event_id: str) -> str:
        """calendar, deleteditems, or a secondary calendar's name."""
        mailbox = upn.lower()
        key = self.store.get(mailbox, event_id).folder
        return key if key in (CALENDAR, DELETED_ITEMS) else self.store.folder(mailbox, key).name

    def create_as_user(self, upn: str, body: dict[str, Any], calendar: str | None = None) -> str:
        """A user creates an event in Outlook (no transactionId, no extended property), in
        their default calendar or in a calendar of theirs named `calendar`."""
        mailbox = upn.lower()
        folder = CALENDAR
        if calendar is not None:
            named = [f for f in self.store.folders(mailbox).values() if f.name == calendar]
            folder = named[0].key if named else self.store.add_calendar(mailbox, calendar).key
        return self.store.create(mailbox, body, folder)[0].id

    def update_as_user(self, upn: str, event_id: str, changes: dict[str, Any]) -> None:
        """A user edits the event in Outlook: new changeKey, so our etag goes stale."""
        self.store.update(upn.lower(), event_id, changes, None)

    def delete_as_user(self, upn: str, event_id: str) -> None:
        """A user deletes the event in Outlook: it moves to Deleted Items, id unchanged."""
        self.store.move(upn.lower(), event_id, DELETED_ITEMS)

    def restore_as_user(self, upn: str, event_id: str) -> None:
        """A user moves the event back out of Deleted Items into their calendar."""
        self.store.move(upn.lower(), event_id, CALENDAR)

    def purge_as_user(self, upn: str, event_id: str) -> None:
        """Gone for good (Deleted Items emptied, or a hard delete)."""
        self.store.purge(upn.lower(), event_id)

    def mailbox_unavailable(
        self,
        upn: str,
        kind: Literal["invalid_user", "not_enabled", "access_denied"] = "invalid_user",
    ) -> None:
        """From now on every request for the mailbox is refused as `kind` says: deleted or
        renamed (404 ErrorInvalidUser), unlicensed or soft-deleted (404
        MailboxNotEnabledForRESTAPI), or outside the app's access policy (403)."""
        mailbox = upn.lower()
        fault = {
            "invalid_user": invalid_user(mailbox),
            "not_enabled": mailbox_not_enabled(),
            "access_denied": access_denied(),
        }[kind]
        with self._lock:
            self._unavailable[mailbox] = fault

    def mailbox_available(self, upn: str) -> None:
        with self._lock:
            self._unavailable.pop(upn.lower(), None)

    def add_app(self, client_id: str, secret: str, roles: tuple[str, ...]) -> None:
        """Another application registration in the tenant (its own limits, its own roles)."""
        self.apps[client_id] = _App(secret, frozenset(roles))

    def requests(self, upn: str | None = None, method: str | None = None) -> list[RequestRecord]:
        return [
            r
            for r in list(self.log.records)
            if (upn is None or r.mailbox == upn.lower()) and (method is None or r.method == method)
        ]

    def max_concurrency_seen(self, upn: str) -> int:
        """Peak of requests in flight for the mailbox by one application, counting ones
        refused for the limit."""
        mailbox = upn.lower()
        with self._lock:
            return max((n for (_, m), n in self._peak.items() if m == mailbox), default=0)

    def concurrency_rejections(self, upn: str) -> int:
        mailbox = upn.lower()
        with self._lock:
            return sum(n for (_, m), n in self._rejected.items() if m == mailbox)

    def pending_stores(self) -> int:
        """Late stores not landed yet."""
        with self._lock:
            return self._pending

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {t: (c, 0.0) for t, (c, _) in self._tokens.items()}

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
        app = self.apps.get(str(form.get("client_id")))
        if app is None:
            return _aad_error(
                400,
                "unauthorized_client",
                700016,
                "Application with identifier "
                f"'{form.get('client_id')}' was not found in the directory.",
            )
        if form.get("client_secret") != app.secret:
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
        caller = Caller(str(form["client_id"]), app.roles)
        with self._lock:
            # Token lifetimes run on the wall clock: a client caches them by it.
            self._tokens[token] = (caller, time.monotonic() + self.token_lifetime)
        return _Answer(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            },
        )

    def authenticate(self, header: str | None) -> Caller:
        if not header or not header.startswith("Bearer "):
            raise GraphFault(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self._lock:
            found = self._tokens.get(header.removeprefix("Bearer ").strip())
        if found is None:
            raise GraphFault(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
        caller, expiry = found
        if expiry <= time.monotonic():
            raise GraphFault(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        return caller

    def authorize(self, caller: Caller, method: str) -> None:
        """App-only calls need the application permission in the token's roles (the event
        pages' permission tables: Calendars.Read to read, Calendars.ReadWrite to write)."""
        wanted = {READ_WRITE} if method != "GET" else {READ_WRITE, "Calendars.Read"}
        if not caller.roles & wanted:
            raise access_denied()

    def check_mailbox(self, mailbox: str) -> None:
        with self._lock:
            fault = self._unavailable.get(mailbox)
        if fault is not None:
            raise fault
        if self.mailboxes is not None and mailbox not in self.mailboxes:
            raise invalid_user(mailbox)

    def gate(self, app: str, mailbox: str) -> tuple[GraphFault, str] | None:
        """Throttling before any work: a Retry-After not yet passed, or the request window
        full. Admitted requests count in the window."""
        key = (app, mailbox)
        now = self.clock.monotonic()
        with self._lock:
            blocked = self._blocked.get(key)
            if self.faults.enforce_retry_after and blocked is not None and now < blocked:
                return too_many_requests(self._seconds(blocked - now)), "blocked"
            window = self._window.setdefault(key, deque())
            while window and window[0] <= now - self.faults.window_seconds:
                window.popleft()
            if len(window) >= self.faults.requests_per_window:
                wait = window[0] + self.faults.window_seconds - now
                self._blocked[key] = now + wait
                return request_limit(self._seconds(wait)), "request_limited"
            window.append(now)
        return None

    def throttled(self, app: str, mailbox: str, fault: GraphFault) -> GraphFault:
        """Remember a throttling answer's Retry-After: asking before it passed is throttled."""
        raw = fault.headers.get("Retry-After")
        if raw is not None:
            with self._lock:
                self._blocked[(app, mailbox)] = self.clock.monotonic() + float(raw)
        return fault

    def _seconds(self, wait: float) -> str:
        if self.faults.retry_after is not None and "." in self.faults.retry_after:
            return f"{max(wait, 0.001):.3f}"  # a test's fractional setting stays fractional
        return str(max(1, math.ceil(wait)))

    def admit(self, app: str, mailbox: str) -> bool:
        """Count a request in; False (and not counted) when it would pass the limit."""
        key = (app, mailbox)
        with self._lock:
            now = self._inflight.get(key, 0) + 1
            self._peak[key] = max(self._peak.get(key, 0), now)
            if now > self.faults.concurrency_limit:
                self._rejected[key] = self._rejected.get(key, 0) + 1
                return False
            self._inflight[key] = now
            return True

    def release(self, app: str, mailbox: str) -> None:
        with self._lock:
            self._inflight[(app, mailbox)] -= 1

    def store_later(self, mailbox: str, body: dict[str, Any]) -> None:
        """A create that lands `late_store_delay` (fake) seconds from now, answer long lost."""
        delay = self.faults.late_delay()
        with self._lock:
            self._pending += 1

        def land() -> None:
            try:
                self.clock.sleep(delay)
                self.store.create(mailbox, body)
            except GraphFault:
                pass  # e.g. its transactionId taken meanwhile by another body: it failed
            finally:
                with self._lock:
                    self._pending -= 1

        threading.Thread(target=land, daemon=True).start()

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


__all__ = [
    "Behaviour",
    "FakeClock",
    "Faults",
    "GraphFake",
    "RequestRecord",
    "mailbox_concurrency",
    "start_of",
]
