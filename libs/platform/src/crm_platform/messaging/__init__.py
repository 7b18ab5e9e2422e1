"""The messaging port and its two transports (Kafka, in-process)."""

from crm_platform.messaging.port import (
    Consumer,
    Delivery,
    Dispatcher,
    Handler,
    PoisonMessage,
    Publisher,
    PublishError,
    RetryPolicy,
    dead_letter_topic,
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
