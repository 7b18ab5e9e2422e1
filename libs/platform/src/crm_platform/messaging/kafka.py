"""Kafka adapter of the messaging port (kafka-python 3.x)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from crm_contracts.wire import WireMessage
from kafka import KafkaConsumer as _KafkaConsumer
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
)
from kafka.structs import MemberState, OffsetAndMetadata, TopicPartition

from crm_platform.messaging.port import Delivery, Dispatcher, Handler, PublishError, RetryPolicy

log = logging.getLogger(__name__)


class KafkaPublisher:
    """Idempotent keyed producer with `acks=all`: `publish` returns once every message is acked.

    The producer keeps retrying inside `delivery_timeout_ms`, so a broker restart shorter than
    that delays a publish rather than failing it.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "crm",
        delivery_timeout_ms: int = 120_000,
        **overrides: Any,
    ) -> None:
        self._timeout_s = delivery_timeout_ms / 1000 + 5
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            delivery_timeout_ms=delivery_timeout_ms,
            request_timeout_ms=min(30_000, delivery_timeout_ms - 5_000),
            **overrides,
        )

    def publish(self, messages: Sequence[WireMessage]) -> None:
        try:
            futures = [
                self._producer.send(
                    m.topic, key=m.key.encode(), value=m.value, headers=list(m.headers)
                )
                for m in messages
            ]
            self._producer.flush(timeout=self._timeout_s)
            for future in futures:
                future.get(timeout=self._timeout_s)
        except KafkaError as error:
            raise PublishError(f"Kafka did not accept the messages: {error}") from error

    def close(self) -> None:
        self._producer.close(timeout=10)


class KafkaConsumer:
    """A consumer-group member that commits a partition's offsets only after handling its batch.

    A crash before the commit redelivers the batch: handlers dedupe by their tracking records.
    """

    # Longer than a healthy rebalance takes (seconds here), as long as the session timeout.
    STALLED_AFTER_S = 45.0

    def __init__(
        self,
        bootstrap: str,
        topics: Iterable[str],
        group_id: str,
        handler: Handler,
        *,
        dlq: KafkaPublisher,
        policy: RetryPolicy | None = None,
        client_id: str = "crm",
        stop: threading.Event | None = None,
        max_poll_records: int = 200,
        **overrides: Any,
    ) -> None:
        self._stop = stop or threading.Event()
        self._dispatcher = Dispatcher(handler, dlq, policy or RetryPolicy(), self._stop)
        self._topics = list(topics)
        self._settings = dict(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_poll_records,
            **overrides,
        )
        self._consumer = self._join()

    def _join(self) -> Any:
        consumer = _KafkaConsumer(**self._settings)
        # Subscribing before the topics' metadata is known makes the first assignment empty
        # and forces an immediate second rebalance, in which kafka-python 3.0 was seen to
        # hang in SyncGroup after a broker restart. Asking for the partitions first avoids it.
        for topic in self._topics:
            consumer.partitions_for_topic(topic)
        consumer.subscribe(self._topics)
        self._unsettled_since: float | None = time.monotonic()
        return consumer

    def _watch_membership(self) -> None:
        """Re-join when the group membership has not settled for too long.

        kafka-python 3.0 was seen to hang in SyncGroup after a rebalance, heartbeating no more
        while polls return nothing. A healthy member is STABLE (even an idle one without
        partitions), so time spent in any other state beyond the limit means a stall.
        """
        if self._consumer.group_metadata().state == MemberState.STABLE:
            self._unsettled_since = None
            return
        now = time.monotonic()
        if self._unsettled_since is None:
            self._unsettled_since = now
        elif now - self._unsettled_since > self.STALLED_AFTER_S:
            log.warning(
                "group %s unsettled for %.0fs; re-joining",
                self._settings["group_id"],
                now - self._unsettled_since,
            )
            self._consumer.close(autocommit=False)
            self._consumer = self._join()

    def poll_once(self, timeout: float = 1.0) -> int:
        done = 0
        batches = self._consumer.poll(timeout_ms=int(timeout * 1000))
        if not batches:
            self._watch_membership()
        for tp, records in batches.items():
            next_offset: int | None = None
            for record in records:
                message = WireMessage(
                    record.topic,
                    record.key.decode() if record.key is not None else "",
                    record.value if record.value is not None else b"",
                    tuple(record.headers or ()),
                )
                if not self._dispatcher.dispatch(
                    message, Delivery(record.topic, record.partition, record.offset)
                ):
                    break
                next_offset = record.offset + 1
                done += 1
            if next_offset is not None:
                self._commit(tp, next_offset)
            if self._stop.is_set():
                # Whatever was fetched but not handled comes again to whoever owns it next.
                self._consumer.seek(
                    tp, next_offset if next_offset is not None else records[0].offset
                )
        return done

    def _commit(self, tp: TopicPartition, offset: int) -> None:
        try:
            self._consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
        except (CommitFailedError, RebalanceInProgressError) as error:
            # The partition moved to another member; it redelivers, tracking dedupes.
            log.warning("commit of %s@%d failed after a rebalance: %s", tp, offset, error)

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or self._stop
        while not stop.is_set() and not self._stop.is_set():
            self.poll_once(timeout=0.5)

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def ensure_topics(
    bootstrap: str,
    topics: dict[str, int],
    *,
    replication_factor: int = 1,
    configs: dict[str, dict[str, str]] | None = None,
) -> None:
    """Create missing topics (name → partitions); existing ones are left as they are."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="crm-admin")
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs=(configs or {}).get(name, {}),
            )
            for name, partitions in topics.items()
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
    finally:
        admin.close()
