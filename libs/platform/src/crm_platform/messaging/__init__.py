"""The messaging port and its two transports (Kafka, in-process)."""

from crm_contracts.topics import dead_letter as dead_letter_topic

from crm_platform.messaging.port import (
    Consumer,
    Delivery,
    Dispatcher,
    Handler,
    PoisonMessage,
    Publisher,
    PublishError,
    RetryPolicy,
)

__all__ = [
    "Consumer",
    "Delivery",
    "Dispatcher",
    "Handler",
    "PoisonMessage",
    "PublishError",
    "Publisher",
    "RetryPolicy",
    "dead_letter_topic",
]
