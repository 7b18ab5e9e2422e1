"""Parked events: what a worker could not process, kept with why, so the rest goes on.

One bad event (a value the database refuses, a change the contract cannot carry, a message
no handler understands) must never stall a projection, relay, consumer or feed for
everybody. The worker parks it here, with its position and error, and moves on. Order per
subject (an activity, a customer) still matters to whoever reads after us, so once a subject
has a parked event its later events are parked behind it rather than processed out of order.

Workers run in processes of their own, so the API never processes a parked event itself:
`POST /ops/parked/{id}/retry` marks it (and the events parked behind it) for retry, and the
worker that parked it tries again on its next round and removes what then succeeds.

The table lives in the service's own database, beside the views whose transactions park
(`park` joins the caller's transaction, so an event is parked exactly when its position is
recorded: never lost, never both).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from crm_contracts.wire import WireMessage
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from crm_platform.messaging.port import Delivery, GiveUp, Handler
from crm_platform.outages import TRANSIENT_ERRORS
from crm_platform.sqlview import SqlView, ViewTransaction, iso, parse_iso

log = logging.getLogger(__name__)

PARKED: Final = "parked"
RETRY: Final = "retry"
ERROR_MAX: Final = 2000
_STACK_MAX: Final = 4000


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    id: str
    worker: str
    position: str
    subject: str
    error: str
    state: str
    attempts: int
    parked_at: datetime
    payload: Mapping[str, Any] | None


class ParkingLot(SqlView):
    """The service's parked events (table `<service>_parked_events`)."""

    name = "parked"
    ddl: Sequence[str] = (
        "CREATE TABLE IF NOT EXISTS {t}events ("
        " id TEXT PRIMARY KEY, worker TEXT NOT NULL, position TEXT NOT NULL,"
        " subject TEXT NOT NULL, error TEXT NOT NULL, stack TEXT NOT NULL,"
        " state TEXT NOT NULL, attempts INTEGER NOT NULL, parked_at TEXT NOT NULL,"
        " payload TEXT)",
    )

    def __init__(self, env: Mapping[str, str], service: str) -> None:
        name = f"{service}_parked"
        # Parking writes ride on the workers' own transactions; the lot's own queries (a
        # retry's look-up, the ops listing) are rare, so its pool stays small: a service's
        # pools are opened at their size when it starts (#16's connection budget).
        if "POSTGRES_POOL_SIZE" in env:
            env = {**env, "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "2"}
        # PostgreSQL puts an index in its table's schema and refuses a qualified index name.
        self.ddl = (
            *type(self).ddl,
            f"CREATE INDEX IF NOT EXISTS {name}_events_worker ON {{t}}events (worker, subject)",
        )
        super().__init__(env, name=name)

    # -- parking, inside the worker's own transaction ----------------------------------------

    def park(
        self,
        tx: ViewTransaction,
        *,
        worker: str,
        position: str,
        subject: str,
        error: BaseException | str,
        payload: Mapping[str, Any] | None = None,
    ) -> str:
        """Park one event in `tx` (a transaction on a view of the same database)."""
        entry_id = uuid.uuid4().hex
        reason, stack = _describe(error)
        tx.execute(
            f"INSERT INTO {self.table('events')} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                entry_id,
                worker,
                position,
                subject,
                reason,
                stack,
                PARKED,
                1,
                iso(datetime.now(UTC)),
                json.dumps(payload) if payload is not None else None,
            ),
        )
        log.error("%s parked %s (%s): %s", worker, position, subject, reason)
        return entry_id

    def park_now(self, **fields: Any) -> str:
        """Park in a transaction of its own (a consumer's message, which has no view tx)."""
        with self.transaction() as tx:
            return self.park(tx, **fields)

    def subjects(self, worker: str) -> set[str]:
        """The subjects `worker` has parked events of: their later events wait behind them."""
        rows = self.query("SELECT DISTINCT subject FROM {t}events WHERE worker = ?", (worker,))
        return {str(row["subject"]) for row in rows}

    def parked_at(self, worker: str, position: str) -> bool:
        row = self.query_one(
            "SELECT id FROM {t}events WHERE worker = ? AND position = ?", (worker, position)
        )
        return row is not None

    def parked_count(self, worker: str, subject: str) -> int:
        """How many events of `subject` are parked by `worker`."""
        row = self.query_one(
            "SELECT COUNT(*) AS n FROM {t}events WHERE worker = ? AND subject = ?",
            (worker, subject),
        )
        return int(row["n"]) if row else 0

    # -- what the worker does with entries marked for retry ----------------------------------

    def due(self, worker: str, limit: int = 100) -> list[ParkedEvent]:
        """Entries of `worker` marked for retry, oldest first (by position within a subject)."""
        rows = self.query(
            "SELECT * FROM {t}events WHERE worker = ? AND state = ? ORDER BY parked_at, position"
            " LIMIT ?",
            (worker, RETRY, limit),
        )
        return [_entry(row) for row in rows]

    def resolve(self, tx: ViewTransaction, entry_id: str) -> None:
        tx.execute(f"DELETE FROM {self.table('events')} WHERE id = ?", (entry_id,))  # noqa: S608

    def failed_again(self, entry_id: str, error: BaseException) -> None:
        reason, stack = _describe(error)
        with self.transaction() as tx:
            tx.execute(
                "UPDATE {t}events SET state = ?, error = ?, stack = ?, attempts = attempts + 1"
                " WHERE id = ?",
                (PARKED, reason, stack, entry_id),
            )
        log.error("retry of parked %s failed again: %s", entry_id, reason)

    # -- what operators see and do -----------------------------------------------------------

    def entries(self, *, worker: str | None = None, limit: int = 100) -> list[ParkedEvent]:
        where, params = ("WHERE worker = ?", [worker]) if worker else ("", [])
        rows = self.query(
            f"SELECT * FROM {{t}}events {where} ORDER BY parked_at LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [_entry(row) for row in rows]

    def get(self, entry_id: str) -> ParkedEvent | None:
        row = self.query_one("SELECT * FROM {t}events WHERE id = ?", (entry_id,))
        return _entry(row) if row is not None else None

    def request_retry(self, entry_id: str) -> list[str]:
        """Mark the entry and the later ones of its subject for retry; their ids (none: gone)."""
        with self.transaction() as tx:
            tx.execute("SELECT worker, subject FROM {t}events WHERE id = ?", (entry_id,))
            row = tx.fetchone()
            if row is None:
                return []
            tx.execute(
                "SELECT id FROM {t}events WHERE worker = ? AND subject = ?",
                (row["worker"], row["subject"]),
            )
            ids = [str(r["id"]) for r in tx.fetchall()]
            tx.execute(
                "UPDATE {t}events SET state = ? WHERE worker = ? AND subject = ?",
                (RETRY, row["worker"], row["subject"]),
            )
        return ids

    def counts(self) -> dict[str, int]:
        rows = self.query("SELECT worker, COUNT(*) AS n FROM {t}events GROUP BY worker")
        return {str(row["worker"]): int(row["n"]) for row in rows}


class ParkedGauge(Collector):
    """`crm_parked_events{worker}`: how many events are parked now (read at each scrape)."""

    def __init__(self, lot: ParkingLot) -> None:
        self._lot = lot

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "crm_parked_events", "Events parked now, by worker", labels=["worker"]
        )
        try:
            for worker, count in sorted(self._lot.counts().items()):
                family.add_metric([worker], count)
        except Exception as error:  # a scrape must not fail because the database is down
            log.warning("cannot count parked events: %s", error)
        yield family

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self)


def _describe(error: BaseException | str) -> tuple[str, str]:
    if isinstance(error, str):
        return error[:ERROR_MAX], ""
    reason = f"{type(error).__name__}: {error}"[:ERROR_MAX]
    stack = "".join(traceback.format_exception(error))[-_STACK_MAX:]
    return reason, stack


def _entry(row: Mapping[str, Any]) -> ParkedEvent:
    parked_at = parse_iso(row["parked_at"])
    assert parked_at is not None
    return ParkedEvent(
        id=str(row["id"]),
        worker=str(row["worker"]),
        position=str(row["position"]),
        subject=str(row["subject"]),
        error=str(row["error"]),
        state=str(row["state"]),
        attempts=int(row["attempts"]),
        parked_at=parked_at,
        payload=json.loads(row["payload"]) if row["payload"] else None,
    )


# -- messages a consumer gave up on ------------------------------------------------------------


def message_parker(lot: ParkingLot, worker: str) -> GiveUp:
    """A `RetryPolicy.park` that keeps the whole message, so a retry needs nothing else."""

    def park(message: WireMessage, delivery: Delivery, error: BaseException, attempts: int) -> None:
        position = f"{delivery.topic}:{delivery.partition}@{delivery.offset}"
        if delivery.retry or lot.parked_at(worker, position):
            return  # a redelivery of what is parked already, or a retry failing again
        lot.park_now(
            worker=worker,
            position=position,
            subject=message.key,
            error=error,
            payload={
                "topic": message.topic,
                "partition": delivery.partition,
                "offset": delivery.offset,
                "key": message.key,
                "headers": [[k, base64.b64encode(v).decode("ascii")] for k, v in message.headers],
                "value": base64.b64encode(message.value).decode("ascii"),
                "attempts": attempts,
            },
        )

    return park


def parked_message(entry: ParkedEvent) -> tuple[WireMessage, Delivery]:
    payload = entry.payload or {}
    message = WireMessage(
        str(payload["topic"]),
        str(payload["key"]),
        base64.b64decode(payload["value"]),
        tuple((str(k), base64.b64decode(v)) for k, v in payload["headers"]),
    )
    delivery = Delivery(
        str(payload["topic"]), int(payload["partition"]), int(payload["offset"]), retry=True
    )
    return message, delivery


class MessageRetries:
    """Hands the messages an operator marked for retry to the consumer's handler again.

    Runs beside the consumer (its own worker thread), since a consumer's loop belongs to the
    transport. The handler's tracking (per retried message) makes a repeat harmless.
    """

    def __init__(
        self, lot: ParkingLot, worker: str, handler: Handler, *, interval: float = 2.0
    ) -> None:
        self._lot = lot
        self._worker = worker
        self._handler = handler
        self._interval = interval

    def retry_due(self) -> int:
        resolved = 0
        for entry in self._lot.due(self._worker):
            message, delivery = parked_message(entry)
            try:
                self._handler(message, delivery)
            except TRANSIENT_ERRORS:
                raise
            except Exception as error:
                self._lot.failed_again(entry.id, error)
                continue
            with self._lot.transaction() as tx:
                self._lot.resolve(tx, entry.id)
            resolved += 1
        return resolved

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._interval):
            try:
                self.retry_due()
            except Exception as error:  # an outage: try again on the next round
                log.warning("%s: retrying parked messages failed: %s", self._worker, error)
