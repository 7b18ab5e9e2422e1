"""Run the activity relay once in its own process, for the crash test.

Builds the application and the relay from environment variables, publishes everything
recorded so far to the real Kafka broker, and exits 0. With `RELAY_CRASH_AFTER_PUBLISHES=N`
the process kills itself with SIGKILL right after the broker acknowledged the N-th batch and
before the relay could record its position: the crash the relay must survive.

    RELAY_STORE_ENV             JSON object: the eventsourcing env of the event store
    RELAY_BOOTSTRAP             Kafka bootstrap host:port
    RELAY_TOPIC                 the topic to publish on
    RELAY_BATCH_SIZE            events per batch (default 500)
    RELAY_CRASH_AFTER_PUBLISHES kill -9 after this many acknowledged batches (default: never)

Prints one JSON line: {"published": <events>, "position": <notification id>}.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Sequence

from activity.application import ActivityApplication
from activity.relay import ActivityRelay, relay_tracking
from activity.rules import CustomerEntry
from crm_contracts.wire import WireMessage
from crm_platform.messaging import Publisher
from crm_platform.messaging.kafka import KafkaPublisher


class NoCustomers:
    """The relay never runs a command, so it needs no customer directory."""

    def get(self, customer_id: str) -> CustomerEntry | None:
        return None


class DiesAfterPublishing:
    """Passes batches to the broker, then dies hard once `crash_after` of them were acked."""

    def __init__(self, inner: Publisher, crash_after: int) -> None:
        self._inner = inner
        self._left = crash_after

    def publish(self, messages: Sequence[WireMessage]) -> None:
        self._inner.publish(messages)  # returns only after the broker's acks
        self._left -= 1
        if self._left == 0:
            in_flight = [(m.header("ce_id") or b"").decode() for m in messages]
            print(json.dumps({"crashing_after": in_flight}))
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)  # no finally, no atexit, no tracking

    def close(self) -> None:
        self._inner.close()


def main() -> int:
    env = json.loads(os.environ["RELAY_STORE_ENV"])
    publisher: Publisher = KafkaPublisher(os.environ["RELAY_BOOTSTRAP"], client_id="relay-test")
    crash_after = int(os.environ.get("RELAY_CRASH_AFTER_PUBLISHES") or 0)
    if crash_after:
        publisher = DiesAfterPublishing(publisher, crash_after)
    app = ActivityApplication(env, directory=NoCustomers())
    tracking = relay_tracking(env)
    relay = ActivityRelay(
        app,
        publisher,
        tracking,
        topic=os.environ["RELAY_TOPIC"],
        batch_size=int(os.environ.get("RELAY_BATCH_SIZE") or 500),
    )
    try:
        published = relay.catch_up()
        print(json.dumps({"published": published, "position": relay.position}))
    finally:
        publisher.close()
        tracking.close()
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
