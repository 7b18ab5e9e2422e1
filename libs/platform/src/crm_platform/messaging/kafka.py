"""Kafka adapter of the messaging port (kafka-python 3.x)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from crm_contracts.wire import WireMessage
from kafka import KafkaConsumer as _KafkaConsumer
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import MemberState, OffsetAndMetadata, TopicPartition

from crm_platform.messaging.port import Delivery, Dispatcher, Handler, PublishError, RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_SESSION_TIMEOUT_MS: Final = 10_000
DEFAULT_HEARTBEAT_INTERVAL_MS: Final = 3_000
# Committing what was handled before leaving: bounded, a broker that is down must not keep a
# stopping process alive (the next owner redelivers what was not committed).
FINAL_COMMIT_TIMEOUT_MS: Final = 2_000
CLOSE_TIMEOUT_MS: Final = 3_000
# kafka-python backs reconnects off up to 30 s: after a broker restart of a few seconds, a
# producer or consumer could sit idle that long before it looks again.
RECONNECT_BACKOFF_MAX_MS: Final = 1_000

Offsets = Mapping[TopicPartition, OffsetAndMetadata]


@dataclass(frozen=True, slots=True)
class GroupTimeouts:
    """How soon a consumer group gives a dead member's partitions to the others.

    The broker declares a member dead when no heartbeat came for `session_timeout_ms`
    (kafka-python's default is 45 s: a SIGKILLed worker's partitions would sit still that
    long). It must lie within the broker's group.min/max.session.timeout.ms (6 s–30 min by
    default); heartbeats go every `heartbeat_interval_ms`, at most a third of it by custom.
    """

    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS
    heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS

    def __post_init__(self) -> None:
        if self.heartbeat_interval_ms <= 0 or self.session_timeout_ms <= 0:
            raise ValueError("Kafka group timeouts must be positive")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(
                f"the heartbeat interval ({self.heartbeat_interval_ms} ms) must be shorter "
                f"than the session timeout ({self.session_timeout_ms} ms)"
            )

    @property
    def stalled_after_s(self) -> float:
        """When an unsettled membership counts as stalled: a healthy rebalance may wait a
        whole session timeout for a member that died, and then take a few seconds more."""
        return 2 * self.session_timeout_ms / 1000 + 5

    def consumer_settings(self) -> dict[str, int]:
        return {
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
        }


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
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
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

    Offsets are committed asynchronously, once per poll, so handling never waits for the
    broker's answer; on close the member commits what it handled synchronously (bounded) and
    leaves the group, so the next owner starts after it at once. A commit that did not land
    (a crash, a rebalance meanwhile) redelivers: handlers dedupe by their tracking records
    (at least once).
    """

    # None: derived from the session timeout (`GroupTimeouts.stalled_after_s`).
    STALLED_AFTER_S: float | None = None

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
        timeouts: GroupTimeouts | None = None,
        **overrides: Any,
    ) -> None:
        self._stop = stop or threading.Event()
        self._dispatcher = Dispatcher(handler, dlq, policy or RetryPolicy(), self._stop)
        self._topics = list(topics)
        self.timeouts = timeouts or GroupTimeouts()
        self._settings: dict[str, Any] = dict(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_poll_records,
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            **self.timeouts.consumer_settings(),
        )
        self._settings.update(overrides)
        # Handled, and so to be committed, per partition: the offset of the next record.
        # The rebalance listener runs on kafka-python's IO thread: hence the lock.
        self._handled: dict[TopicPartition, OffsetAndMetadata] = {}
        self._handled_lock = threading.Lock()
        self._consumer = self._join()

    @property
    def stalled_after_s(self) -> float:
        if self.STALLED_AFTER_S is not None:
            return self.STALLED_AFTER_S
        return self.timeouts.stalled_after_s

    def _join(self) -> Any:
        consumer = _KafkaConsumer(**self._settings)
        # Subscribing before the topics' metadata is known makes the first assignment empty
        # and forces an immediate second rebalance, in which kafka-python 3.0 was seen to
        # hang in SyncGroup after a broker restart. Asking for the partitions first avoids it.
        for topic in self._topics:
            consumer.partitions_for_topic(topic)
        consumer.subscribe(self._topics, listener=_ForgetRevoked(self))
        self._unsettled_since: float | None = time.monotonic()
        self.forget(None)
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
        elif now - self._unsettled_since > self.stalled_after_s:
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
        handled: dict[TopicPartition, OffsetAndMetadata] = {}
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
                handled[tp] = OffsetAndMetadata(next_offset, "", -1)
            if self._stop.is_set():
                # Whatever was fetched but not handled comes again to whoever owns it next.
                self._consumer.seek(
                    tp, next_offset if next_offset is not None else records[0].offset
                )
        if handled:
            with self._handled_lock:
                self._handled.update(handled)
            self._consumer.commit_async(handled, callback=self._committed)
        return done

    @staticmethod
    def _committed(offsets: Offsets, response: object) -> None:
        if isinstance(response, BaseException):
            # A later commit, or the next owner's, covers these; nothing is lost, at worst
            # redelivered (and deduplicated by the handlers' tracking).
            log.warning("asynchronous commit of %s failed: %s", dict(offsets), response)

    def forget(self, partitions: Iterable[TopicPartition] | None) -> None:
        """Drop what was handled on `partitions` (None: all) from what `close` commits: once
        a partition moved on, its new owner's commits must not be overwritten by older ones."""
        with self._handled_lock:
            if partitions is None:
                self._handled.clear()
            for tp in partitions or ():
                self._handled.pop(tp, None)

    def commit_handled(self) -> None:
        """Commit synchronously what was handled on the partitions this member still owns,
        bounded in time; a failure is logged, not raised (the next owner redelivers)."""
        owned = self._consumer.assignment()
        with self._handled_lock:
            offsets = {tp: o for tp, o in self._handled.items() if tp in owned}
            self._handled.clear()
        if not offsets:
            return
        try:
            self._consumer.commit(offsets, timeout_ms=FINAL_COMMIT_TIMEOUT_MS)
        except KafkaError as error:
            log.warning("final commit of %s failed: %s", offsets, error)

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or self._stop
        while not stop.is_set() and not self._stop.is_set():
            self.poll_once(timeout=0.5)

    def close(self) -> None:
        self.commit_handled()
        # Leaving the group hands the partitions over at once rather than after the session
        # timeout; bounded, so a broker that is down does not hold a stopping process.
        self._consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)


class _ForgetRevoked(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions that go to another member leave what `close` commits.

    (It runs on kafka-python's IO thread, where no blocking call such as a synchronous
    commit is allowed; the asynchronous commits of every poll have covered them.)
    """

    def __init__(self, consumer: KafkaConsumer) -> None:
        self._consumer = consumer

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._consumer.forget(revoked)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        pass


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
