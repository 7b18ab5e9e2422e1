"""In-process adapter of the messaging port, for the embedded single-process mode.

It keeps Kafka's guarantees that the services rely on: topics split into partitions by key
(so one key's messages stay in order), offsets per partition, consumer-group positions that
advance only after a handler returned (at-least-once), and durability across restarts, since
the log lives in a SQLite file (or in memory for tests).
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Sequence

from crm_contracts.wire import Headers, WireMessage

from crm_platform.messaging.port import Delivery, Dispatcher, Handler, Publisher, RetryPolicy

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    key TEXT NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL,
    PRIMARY KEY (topic, partition, offset)
);
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
"""


def _encode_headers(headers: Headers) -> str:
    return json.dumps([[k, base64.b64encode(v).decode()] for k, v in headers])


def _decode_headers(text: str) -> Headers:
    return tuple((k, base64.b64decode(v)) for k, v in json.loads(text))


class InProcessBroker:
    """A durable partitioned log shared by the publishers and consumers of one process."""

    def __init__(self, path: str = ":memory:", partitions: int = 3) -> None:
        self.partitions = partitions
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._appended = threading.Condition(self._lock)
        self._active_groups: set[str] = set()

    def partition_for(self, key: str) -> int:
        return zlib.crc32(key.encode()) % self.partitions

    def append(self, messages: Sequence[WireMessage]) -> None:
        with self._appended:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for m in messages:
                    partition = self.partition_for(m.key)
                    (next_offset,) = self._db.execute(
                        "SELECT COALESCE(MAX(offset) + 1, 0) FROM messages"
                        " WHERE topic = ? AND partition = ?",
                        (m.topic, partition),
                    ).fetchone()
                    self._db.execute(
                        "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            m.topic,
                            partition,
                            next_offset,
                            m.key,
                            m.value,
                            _encode_headers(m.headers),
                        ),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._appended.notify_all()

    def fetch(
        self, group_id: str, topic: str, partition: int, limit: int
    ) -> list[tuple[int, WireMessage]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT offset, key, value, headers FROM messages"
                " WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?",
                (topic, partition, self._committed(group_id, topic, partition), limit),
            ).fetchall()
        return [(o, WireMessage(topic, k, bytes(v), _decode_headers(h))) for o, k, v, h in rows]

    def commit(self, group_id: str, topic: str, partition: int, next_offset: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO group_offsets VALUES (?, ?, ?, ?) ON CONFLICT"
                " (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                (group_id, topic, partition, next_offset),
            )

    def _committed(self, group_id: str, topic: str, partition: int) -> int:
        row = self._db.execute(
            "SELECT next_offset FROM group_offsets WHERE group_id = ? AND topic = ?"
            " AND partition = ?",
            (group_id, topic, partition),
        ).fetchone()
        return int(row[0]) if row else 0

    def messages(self, topic: str) -> list[WireMessage]:
        """Everything on a topic, partition by partition (for inspection and tests)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value, headers FROM messages WHERE topic = ?"
                " ORDER BY partition, offset",
                (topic,),
            ).fetchall()
        return [WireMessage(topic, k, bytes(v), _decode_headers(h)) for k, v, h in rows]

    def wait_for_append(self, timeout: float) -> None:
        with self._appended:
            self._appended.wait(timeout)

    def join(self, group_id: str) -> None:
        # One member per group: with a single process there is nothing to balance, and two
        # members would each process every partition.
        with self._lock:
            if group_id in self._active_groups:
                raise ValueError(f"consumer group {group_id!r} already has a member")
            self._active_groups.add(group_id)

    def leave(self, group_id: str) -> None:
        with self._lock:
            self._active_groups.discard(group_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class InProcessPublisher:
    def __init__(self, broker: InProcessBroker) -> None:
        self._broker = broker

    def publish(self, messages: Sequence[WireMessage]) -> None:
        self._broker.append(messages)

    def close(self) -> None:
        pass


class InProcessConsumer:
    def __init__(
        self,
        broker: InProcessBroker,
        topics: Iterable[str],
        group_id: str,
        handler: Handler,
        *,
        dlq: Publisher | None = None,
        policy: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        batch_size: int = 200,
    ) -> None:
        self._broker = broker
        self._topics = list(topics)
        self._group_id = group_id
        self._stop = stop or threading.Event()
        self._dispatcher = Dispatcher(
            handler, dlq or InProcessPublisher(broker), policy or RetryPolicy(), self._stop
        )
        self._batch_size = batch_size
        broker.join(group_id)

    def poll_once(self, timeout: float = 1.0) -> int:
        done = self._drain()
        if done == 0 and timeout > 0:
            self._broker.wait_for_append(timeout)
            done = self._drain()
        return done

    def _drain(self) -> int:
        done = 0
        for topic in self._topics:
            for partition in range(self._broker.partitions):
                batch = self._broker.fetch(self._group_id, topic, partition, self._batch_size)
                for offset, message in batch:
                    if not self._dispatcher.dispatch(message, Delivery(topic, partition, offset)):
                        return done
                    self._broker.commit(self._group_id, topic, partition, offset + 1)
                    done += 1
        return done

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or self._stop
        while not stop.is_set() and not self._stop.is_set():
            self.poll_once(timeout=0.5)

    def close(self) -> None:
        self._broker.leave(self._group_id)
