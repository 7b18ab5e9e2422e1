"""The messaging port: what every transport offers the services.

A transport moves `WireMessage`s (key, CloudEvents headers, JSON value). Publishing blocks
until the transport has durably accepted every message. Consuming is at-least-once: a
message is committed only after its handler returned, so handlers must be idempotent (the
services record a tracking position per partition in the same transaction as the effect).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from crm_contracts.errors import ContractError
from crm_contracts.topics import dead_letter as dead_letter_topic
from crm_contracts.wire import WireMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a consumed message sits: a tracking name per partition plus the offset.

    A parked message handed over again (`retry`) sits behind positions its partition has
    long passed, so it is tracked under a name of its own: handled once, like any other.
    """

    topic: str
    partition: int
    offset: int
    retry: bool = False

    @property
    def tracking_name(self) -> str:
        if self.retry:
            return f"{self.topic}:{self.partition}@{self.offset}"
        return f"{self.topic}:{self.partition}"


Handler = Callable[[WireMessage, Delivery], None]
GiveUp = Callable[[WireMessage, Delivery, BaseException, int], None]


class PoisonMessage(Exception):
    """Raised by a handler for a message that can never be processed: no retry, straight to DLQ."""


class PublishError(Exception):
    """The transport did not accept a message; nothing is known to be published."""


class Publisher(Protocol):
    def publish(self, messages: Sequence[WireMessage]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with capped exponential backoff and full jitter.

    `poison` errors skip the retries: a message that cannot be read now never will be.
    `infrastructure` errors (a database that is down) are retried without bound, because
    dead-lettering a good message would lose it.
    """

    max_attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 2.0
    poison: tuple[type[BaseException], ...] = (PoisonMessage, ContractError)
    infrastructure: tuple[type[BaseException], ...] = ()
    park: GiveUp | None = None
    """Keeps a message given up on (the service's parked events), before it goes to the DLQ."""

    def delay(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto


def as_dead_letter(
    message: WireMessage, delivery: Delivery, error: BaseException, attempts: int
) -> WireMessage:
    """The original message, on `<topic>.dlq`, with why and where it failed in its headers."""
    reason = f"{type(error).__name__}: {error}"[:2000]
    extra = (
        ("dlq_reason", reason.encode()),
        ("dlq_error_type", type(error).__name__.encode()),
        ("dlq_stack", "".join(traceback.format_exception(error))[-4000:].encode()),
        ("dlq_original_topic", delivery.topic.encode()),
        ("dlq_original_partition", str(delivery.partition).encode()),
        ("dlq_original_offset", str(delivery.offset).encode()),
        ("dlq_attempts", str(attempts).encode()),
        ("dlq_failed_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode()),
    )
    return WireMessage(
        dead_letter_topic(delivery.topic), message.key, message.value, message.headers + extra
    )


class Dispatcher:
    """Runs a handler on one message with the retry policy; dead-letters what cannot be done.

    Shared by every transport so that retry and DLQ behave the same whichever runs.
    """

    def __init__(
        self,
        handler: Handler,
        dlq: Publisher,
        policy: RetryPolicy,
        stop: threading.Event | None = None,
    ) -> None:
        self._handler = handler
        self._dlq = dlq
        self._policy = policy
        self._stop = stop or threading.Event()

    def dispatch(self, message: WireMessage, delivery: Delivery) -> bool:
        """True when the message is done (handled or dead-lettered) and may be committed.

        False only when asked to stop while an infrastructure error was being retried.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                self._handler(message, delivery)
                return True
            except self._policy.poison as error:
                self._send_to_dlq(message, delivery, error, attempt)
                return True
            except self._policy.infrastructure as error:
                log.warning("infrastructure error on %s, retrying: %s", delivery, error)
                if self._stop.wait(self._policy.delay(min(attempt, 16))):
                    return False
            except Exception as error:
                if attempt >= self._policy.max_attempts:
                    self._send_to_dlq(message, delivery, error, attempt)
                    return True
                log.info("handler failed on %s (attempt %d): %s", delivery, attempt, error)
                if self._stop.wait(self._policy.delay(attempt)):
                    return False

    def _send_to_dlq(
        self, message: WireMessage, delivery: Delivery, error: BaseException, attempts: int
    ) -> None:
        if self._policy.park is not None:
            self._policy.park(message, delivery, error, attempts)
        log.error("dead-lettering %s after %d attempt(s): %s", delivery, attempts, error)
        self._dlq.publish([as_dead_letter(message, delivery, error, attempts)])


class Consumer(Protocol):
    def poll_once(self, timeout: float = 1.0) -> int:
        """Handle what is available (waiting up to `timeout`); returns how many were done."""
        ...

    def run(self, stop: threading.Event) -> None: ...

    def close(self) -> None: ...
