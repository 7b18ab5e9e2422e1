"""Choosing a transport: Kafka when brokers are configured, else the in-process log.

Services ask a `Transport` for publishers and consumers and never learn which one runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from kafka import KafkaAdminClient

from crm_platform.messaging.inprocess import (
    InProcessBroker,
    InProcessConsumer,
    InProcessPublisher,
)
from crm_platform.messaging.kafka import GroupTimeouts, KafkaConsumer, KafkaPublisher
from crm_platform.messaging.port import Consumer, Handler, Publisher, RetryPolicy


class Transport(Protocol):
    def publisher(self) -> Publisher: ...

    def consumer(
        self,
        topics: Iterable[str],
        group: str,
        handler: Handler,
        *,
        policy: RetryPolicy | None = None,
        stop: threading.Event | None = None,
    ) -> Consumer: ...

    def ping(self) -> None:
        """Raise when the transport cannot be reached (readiness)."""
        ...


# A readiness probe must answer within a second; a broker that is down must not hold it.
PING_TIMEOUT_MS = 2_000


class KafkaTransport:
    def __init__(
        self, bootstrap: str, *, client_id: str, timeouts: GroupTimeouts | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.timeouts = timeouts or GroupTimeouts()

    def publisher(self) -> Publisher:
        return KafkaPublisher(self.bootstrap, client_id=self.client_id)

    def consumer(
        self,
        topics: Iterable[str],
        group: str,
        handler: Handler,
        *,
        policy: RetryPolicy | None = None,
        stop: threading.Event | None = None,
    ) -> Consumer:
        return KafkaConsumer(
            self.bootstrap,
            topics,
            group,
            handler,
            dlq=KafkaPublisher(self.bootstrap, client_id=f"{self.client_id}-dlq"),
            policy=policy,
            client_id=self.client_id,
            stop=stop,
            timeouts=self.timeouts,
        )

    def ping(self) -> None:
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            bootstrap_timeout_ms=PING_TIMEOUT_MS,
            request_timeout_ms=PING_TIMEOUT_MS,
        )
        try:
            admin.list_topics()
        finally:
            admin.close()


class InProcessTransport:
    def __init__(self, broker: InProcessBroker) -> None:
        self.broker = broker

    @classmethod
    def at(cls, path: Path) -> InProcessTransport:
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(InProcessBroker(str(path)))

    def publisher(self) -> Publisher:
        return InProcessPublisher(self.broker)

    def consumer(
        self,
        topics: Iterable[str],
        group: str,
        handler: Handler,
        *,
        policy: RetryPolicy | None = None,
        stop: threading.Event | None = None,
    ) -> Consumer:
        return InProcessConsumer(self.broker, topics, group, handler, policy=policy, stop=stop)

    def ping(self) -> None:
        self.broker.messages("__ping__")
