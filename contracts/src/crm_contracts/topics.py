"""Topic names, which messages travel on which topic, and their Kafka keys.

Keys are aggregate ids so all changes of one aggregate land on one partition, in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from crm_contracts.activity import ACTIVITY_EVENT_TYPES, ActivityEvent
from crm_contracts.base import Message
from crm_contracts.calendar_sync import CalendarSyncStatus
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.gaps import GAP_EVENT_TYPES, FutureActivityGap

ACTIVITY_EVENTS: Final = "crm.activity.events.v1"
CUSTOMERS: Final = "crm.customers.v1"
CALENDAR_SYNC: Final = "crm.calendar.sync.v1"
R8_GAPS: Final = "crm.activity.r8-gaps.v1"

# Suggested CloudEvents `source` per producing service (a URI-reference, as the spec asks).
SOURCE_ACTIVITY: Final = "/crm/activity"
SOURCE_SEGMENTATION: Final = "/crm/segmentation"
SOURCE_CALENDAR_SYNC: Final = "/crm/calendar-sync"


@dataclass(frozen=True, slots=True)
class Topic:
    """What a topic carries and how it is kept."""

    name: str
    messages: tuple[type[Message], ...]
    key: str
    """What the record key is, in words (for the AsyncAPI docs)."""
    compacted: bool = False


TOPICS: Final[Mapping[str, Topic]] = {
    t.name: t
    for t in (
        Topic(ACTIVITY_EVENTS, ACTIVITY_EVENT_TYPES, key="activity id (UUID)"),
        Topic(CUSTOMERS, (CustomerSnapshot,), key="customer id", compacted=True),
        Topic(CALENDAR_SYNC, (CalendarSyncStatus,), key="activity id (UUID)"),
        Topic(R8_GAPS, GAP_EVENT_TYPES, key="customer id"),
    )
}

_TOPIC_OF: Final[Mapping[type[Message], str]] = {
    model: topic.name for topic in TOPICS.values() for model in topic.messages
}


def dead_letter(topic: str) -> str:
    """The dead-letter topic for poison messages read from ``topic``."""
    return f"{topic}.dlq"


def topic_for(message: Message | type[Message]) -> str:
    """The topic a message (or message type) is published on."""
    model = message if isinstance(message, type) else type(message)
    try:
        return _TOPIC_OF[model]
    except KeyError:
        raise TypeError(f"{model.__name__} is not published on any topic") from None


def key_for(message: Message) -> str:
    """The Kafka key of a message: the id of the aggregate it belongs to."""
    match message:
        case ActivityEvent() | CalendarSyncStatus():
            return str(message.activity_id)
        case CustomerSnapshot() | FutureActivityGap():
            return message.customer_id
    raise TypeError(f"{type(message).__name__} has no key")
