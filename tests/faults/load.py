"""A bounded stream of activity commands, and what the system must look like afterwards.

`Load` plans activities for one customer and moves some of them, from one thread, the way a
careful client does: every command carries an Idempotency-Key and is sent again with the
same key after a 503 (waiting its Retry-After) or a lost connection, until it succeeds. So
every command ends up done exactly once, whatever fails meanwhile, and `Expected` says what
each activity's history, read model row, Kafka versions and Outlook event must then be.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
from kafka import KafkaConsumer, TopicPartition

from tests.e2e.stack_fixture import Caller
from tests.fakes.graph_fake import start_of

COMMAND_DEADLINE_S: Final = 90.0
# A client that lost its connection tries again soon; nothing tells it when.
RECONNECT_PAUSE_S: Final = 0.2
RETRYABLE: Final = frozenset({503})


@dataclass(frozen=True)
class Attempt:
    """One HTTP exchange: when it went out, when (and how) it was answered."""

    command: str
    sent: float
    answered: float
    status: int | None  # None: no answer (connection refused or lost)
    retry_after: str | None

    @property
    def took(self) -> float:
        return self.answered - self.sent


@dataclass
class Planned:
    activity_id: str
    starts_at: datetime
    moves: int = 0


@dataclass
class Load:
    """`count` commands for `customer`, owned by `owner`: two plans, then a move, and so on."""

    caller: Caller
    customer: str
    owner: str
    count: int
    pause: float = 0.05
    attempts: list[Attempt] = field(default_factory=list)
    planned: dict[str, Planned] = field(default_factory=dict)
    done: int = 0
    failure: BaseException | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-{self.customer}")
        self._base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=2)

    # --- running ---------------------------------------------------------------------------
    def start(self) -> Load:
        self._thread.start()
        return self

    def finish(self, timeout: float = 180.0) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(10)
            raise AssertionError(f"the load did not finish within {timeout:.0f} s")
        if self.failure is not None:
            raise AssertionError(f"the load failed: {self.failure!r}") from self.failure

    def _run(self) -> None:
        try:
            for n in range(self.count):
                if self._stop.is_set():
                    return
                if n % 3 == 2:
                    self._move(list(self.planned.values())[-1], n)
                else:
                    self._plan(n)
                self.done += 1
                self._stop.wait(self.pause)
        except BaseException as error:
            self.failure = error

    def _plan(self, n: int) -> None:
        starts = self._base + timedelta(hours=n)
        body = {
            "customer_id": self.customer,
            "owner": self.owner,
            "type": "status_meeting",
            "channel": "phone",
            "subject": f"Status {n}",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(minutes=30)).isoformat(),
        }
        answer = self._send("plan", "/activities", body)
        self.planned[answer["id"]] = Planned(answer["id"], starts)

    def _move(self, activity: Planned, n: int) -> None:
        to = self._base + timedelta(days=30, hours=n)
        path = f"/activities/{activity.activity_id}/move"
        self._send("move", path, {"starts_at": to.isoformat(), "reason": "no_answer"})
        activity.starts_at, activity.moves = to, activity.moves + 1

    def _send(self, command: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        key = uuid.uuid4().hex
        deadline = time.monotonic() + COMMAND_DEADLINE_S
        while time.monotonic() < deadline:
            sent = time.monotonic()
            try:
                response = self.caller.activity.post(
                    path, json=body, headers={"Idempotency-Key": key}
                )
            except httpx.TransportError:
                self.attempts.append(Attempt(command, sent, time.monotonic(), None, None))
                self._stop.wait(RECONNECT_PAUSE_S)
                continue
            retry_after = response.headers.get("Retry-After")
            self.attempts.append(
                Attempt(command, sent, time.monotonic(), response.status_code, retry_after)
            )
            if response.is_success:
                answer: dict[str, Any] = response.json()
                return answer
            if response.status_code not in RETRYABLE:
                raise AssertionError(
                    f"{command} answered {response.status_code}: {response.text[:300]}"
                )
            self._stop.wait(float(retry_after or 1))
        raise AssertionError(f"{command} did not succeed within {COMMAND_DEADLINE_S:.0f} s")

    # --- what must be true afterwards -----------------------------------------------------
    def answered_between(self, start: float, end: float) -> list[Attempt]:
        return [a for a in self.attempts if start <= a.answered <= end]

    def expected(self) -> dict[str, Planned]:
        return dict(self.planned)


# --- what the system shows -------------------------------------------------------------------


def history_events(caller: Caller, activity_id: str) -> list[str]:
    response = caller.activity.get(f"/activities/{activity_id}/history")
    assert response.status_code == 200, response.text
    entries = response.json()
    assert [e["version"] for e in entries] == list(range(1, len(entries) + 1))
    return [e["event"] for e in entries]


def read_model(caller: Caller, customer: str) -> dict[str, dict[str, Any]]:
    """The activity read model's rows for `customer`, by activity id."""
    rows: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"customer_id": customer, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        response = caller.activity.get("/activities", params=params)
        if response.status_code != 200:
            return {}
        page = response.json()
        rows |= {row["activity_id"]: row for row in page["items"]}
        cursor = page.get("next_cursor")
        if not cursor:
            return rows


def kafka_versions(bootstrap: str, topic: str, keys: Iterable[str]) -> dict[str, list[int]]:
    """Every version on `topic` of the activities `keys`, in the order the topic holds them
    (the ce_id header is `<activity id>:<version>`)."""
    wanted = set(keys)
    found: dict[str, list[int]] = {key: [] for key in wanted}
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, client_id="faults"
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return found
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    key = record.key.decode() if record.key else ""
                    if key in wanted:
                        headers = dict(record.headers or ())
                        found[key].append(int(headers["ce_id"].decode().rsplit(":", 1)[1]))
    finally:
        consumer.close()
    return found


def first_occurrences(versions: list[int]) -> list[int]:
    """The versions in the order they first appeared: a relay that crashed after publishing
    and before recording its position publishes a batch again (duplicates, never gaps)."""
    seen: list[int] = []
    for version in versions:
        if version not in seen:
            seen.append(version)
    return seen


def in_outlook(graph: Any, load: Load) -> bool:
    """One Outlook event per planned activity, at the activity's latest time."""
    events = graph.crm_events(load.owner)
    planned = load.expected()
    return set(events) == set(planned) and all(
        len(events[a]) == 1 and start_of(events[a][0]) == p.starts_at for a, p in planned.items()
    )
