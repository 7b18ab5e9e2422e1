"""The two transports behind one small test-facing interface."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from crm_contracts.wire import WireMessage
from crm_platform.messaging import Consumer, Handler, Publisher, RetryPolicy
from crm_platform.messaging.inprocess import InProcessBroker
from crm_platform.messaging.kafka import ensure_topics
from crm_platform.messaging.transport import InProcessTransport as InProcess
from crm_platform.messaging.transport import KafkaTransport as Kafka
from kafka import KafkaConsumer as RawConsumer
from kafka import TopicPartition

REPO = Path(__file__).resolve().parents[3]


class Transport(Protocol):
    def new_topic(self, partitions: int = 3) -> str: ...
    def new_topic_named(self, name: str, partitions: int = 1) -> None: ...
    def publisher(self) -> Publisher: ...
    def publisher_after_restart(self, old: Publisher) -> Publisher: ...
    def consumer(
        self,
        topics: Iterable[str],
        group: str,
        handler: Handler,
        *,
        policy: RetryPolicy | None = None,
        stop: threading.Event | None = None,
    ) -> Consumer: ...
    def drop(self, consumer: Consumer) -> None: ...
    def read_all(self, topic: str, expect: int) -> list[WireMessage]: ...
    def restart_broker(self) -> None: ...
    def close(self) -> None: ...


class InProcessTransport:
    def __init__(self, path: Path) -> None:
        self._path = path
        self.broker = InProcessBroker(str(path))
        self._consumers: list[Consumer] = []
        self._suffix = uuid.uuid4().hex[:8]

    def new_topic(self, partitions: int = 3) -> str:
        return f"t.{uuid.uuid4().hex[:10]}"

    def new_topic_named(self, name: str, partitions: int = 1) -> None:
        pass  # topics exist as soon as something is appended

    def publisher(self) -> Publisher:
        return InProcess(self.broker).publisher()

    def publisher_after_restart(self, old: Publisher) -> Publisher:
        return InProcess(self.broker).publisher()

    def consumer(
        self,
        topics: Iterable[str],
        group: str,
        handler: Handler,
        *,
        policy: RetryPolicy | None = None,
        stop: threading.Event | None = None,
    ) -> Consumer:
        consumer = InProcess(self.broker).consumer(
            topics, f"{group}.{self._suffix}", handler, policy=policy, stop=stop
        )
        self._consumers.append(consumer)
        return consumer

    def drop(self, consumer: Consumer) -> None:
        consumer.close()
        self._consumers.remove(consumer)

    def read_all(self, topic: str, expect: int) -> list[WireMessage]:
        messages = self.broker.messages(topic)
        return messages if len(messages) >= expect else []

    def restart_broker(self) -> None:
        # The process restarts: a new broker object over the same file must have everything.
        for consumer in self._consumers:
            consumer.close()
        self._consumers.clear()
        self.broker.close()
        self.broker = InProcessBroker(str(self._path))

    def close(self) -> None:
        for consumer in self._consumers:
            consumer.close()
        self.broker.close()


class KafkaTransport:
    def __init__(self, bootstrap: str, topic_factory: Callable[..., str]) -> None:
        self.bootstrap = bootstrap
        self._topic_factory = topic_factory
        self._kafka = Kafka(bootstrap, client_id="test")
        self._closeables: list[Publisher | Consumer] = []
        self._suffix = uuid.uuid4().hex[:8]

    def new_topic(self, partitions: int = 3) -> str:
        return self._topic_factory("t", partitions=partitions)

    def new_topic_named(self, name: str, partitions: int = 1) -> None:
        ensure_topics(self.bootstrap, {name: partitions})

    def publisher(self) -> Publisher:
        publisher = self._kafka.publisher()
        self._closeables.append(publisher)
        return publisher

    def publisher_after_restart(self, old: Publisher) -> Publisher:
        return old  # the same producer object must cope with the restart

    def consumer(
        self,
        topics: Iterable[str],
        group: str,
        handler: Handler,
        *,
        policy: RetryPolicy | None = None,
        stop: threading.Event | None = None,
    ) -> Consumer:
        consumer = self._kafka.consumer(
            topics, f"{group}.{self._suffix}", handler, policy=policy, stop=stop
        )
        self._closeables.append(consumer)
        return consumer

    def drop(self, consumer: Consumer) -> None:
        consumer.close()
        self._closeables.remove(consumer)

    def read_all(self, topic: str, expect: int) -> list[WireMessage]:
        raw = RawConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        try:
            partitions = raw.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not tps:
                return []
            raw.assign(tps)
            raw.seek_to_beginning(*tps)
            ends = raw.end_offsets(tps)
            out: list[WireMessage] = []
            deadline = time.monotonic() + 5
            while any(raw.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
                for records in raw.poll(timeout_ms=200).values():
                    out.extend(
                        WireMessage(r.topic, r.key.decode(), r.value, tuple(r.headers))
                        for r in records
                    )
            return out if len(out) >= expect else []
        finally:
            raw.close()

    def restart_broker(self) -> None:
        subprocess.run(
            ["bash", str(REPO / "deploy/local/kafka.sh"), "restart"],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=240,
        )

    def close(self) -> None:
        for closeable in reversed(self._closeables):
            closeable.close()
