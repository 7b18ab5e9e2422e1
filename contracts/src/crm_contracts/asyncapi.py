"""AsyncAPI 3.0 documents: which service sends and receives what, on which topic.

Written as JSON (valid AsyncAPI, and no YAML dependency). Payloads ``$ref`` the generated
JSON Schemas beside them instead of inlining them, so a schema exists in exactly one file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from crm_contracts.base import Message
from crm_contracts.cloudevents import encode
from crm_contracts.examples import example_messages
from crm_contracts.registry import type_of
from crm_contracts.topics import (
    ACTIVITY_EVENTS,
    CALENDAR_SYNC,
    CUSTOMERS,
    R8_GAPS,
    SOURCE_ACTIVITY,
    SOURCE_CALENDAR_SYNC,
    SOURCE_SEGMENTATION,
    TOPICS,
    Topic,
    key_for,
    topic_for,
)

ASYNCAPI_VERSION: Final = "3.0.0"
DOCUMENT_VERSION: Final = "1.1.0"
"""Bump when the documents change meaningfully (a new message type, a new topic)."""
KAFKA_BINDING_VERSION: Final = "0.5.0"


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    title: str
    description: str
    source: str
    sends: tuple[str, ...]
    receives: tuple[str, ...]


SERVICES: Final[tuple[Service, ...]] = (
    Service(
        "activity",
        "CRM activity service",
        "Plans, moves, retypes, completes and registers sales activities (rules R1-R10); "
        "announces when a prioritized customer is left without a future activity (R8).",
        SOURCE_ACTIVITY,
        sends=(ACTIVITY_EVENTS, R8_GAPS),
        receives=(CUSTOMERS,),
    ),
    Service(
        "segmentation",
        "CRM segmentation service",
        "Keeps the customer registry, segments and targets; counts completed meetings.",
        SOURCE_SEGMENTATION,
        sends=(CUSTOMERS,),
        receives=(ACTIVITY_EVENTS,),
    ),
    Service(
        "calendar-sync",
        "CRM calendar sync",
        "Projects planned activities into the owner's Outlook calendar; needs customer "
        "names from the customer snapshots for the Outlook subject.",
        SOURCE_CALENDAR_SYNC,
        sends=(CALENDAR_SYNC,),
        receives=(ACTIVITY_EVENTS, CUSTOMERS),
    ),
)


def schema_path(model: type[Message]) -> str:
    """Where a message's JSON Schema lives, relative to the contracts directory."""
    return f"schemas/{type_of(model)}.json"


def channel_id(topic: str) -> str:
    """``crm.activity.events.v1`` -> ``activityEvents``."""
    words = topic.removeprefix("crm.").rsplit(".v", 1)[0].replace("-", ".").split(".")
    return words[0] + "".join(word.capitalize() for word in words[1:])


def document(service: Service) -> dict[str, Any]:
    """The AsyncAPI document of one service."""
    topics = [TOPICS[name] for name in (*service.sends, *service.receives)]
    examples = {type(m): m for m in example_messages()}
    operations: dict[str, Any] = {}
    for action, names in (("send", service.sends), ("receive", service.receives)):
        for name in names:
            cid = channel_id(name)
            operations[action + cid[0].upper() + cid[1:]] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{cid}"},
                "messages": [
                    {"$ref": f"#/channels/{cid}/messages/{m.__name__}"}
                    for m in TOPICS[name].messages
                ],
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": service.title,
            "version": DOCUMENT_VERSION,
            "description": service.description
            + " Messages are CloudEvents 1.0 in Kafka binary mode; consumers must ignore"
            " unknown payload properties (only additive, optional changes within a vN).",
        },
        "defaultContentType": "application/json",
        "channels": {channel_id(t.name): _channel(t) for t in topics},
        "operations": operations,
        "components": {
            "messages": {
                m.__name__: _message(m, examples[m], _producer(t.name).source)
                for t in topics
                for m in t.messages
            }
        },
    }


def _producer(topic: str) -> Service:
    return next(s for s in SERVICES if topic in s.sends)


def _channel(topic: Topic) -> dict[str, Any]:
    policy = "compact" if topic.compacted else "delete"
    return {
        "address": topic.name,
        "description": f"Kafka key: {topic.key}. Dead letters go to {topic.name}.dlq.",
        "messages": {
            m.__name__: {"$ref": f"#/components/messages/{m.__name__}"} for m in topic.messages
        },
        "bindings": {
            "kafka": {
                "topic": topic.name,
                "topicConfiguration": {"cleanup.policy": [policy]},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _message(model: type[Message], example: Message, source: str) -> dict[str, Any]:
    ce_type = type_of(model)
    topic = TOPICS[topic_for(model)]
    wire = encode(example, source=source, event_id=f"{key_for(example)}:{example.version}")
    return {
        "name": ce_type,
        "title": model.__name__,
        "summary": (model.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "headers": _headers_schema(ce_type),
        "payload": {"$ref": f"../{schema_path(model)}"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": topic.key},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [
            {
                "name": model.__name__,
                "headers": {k: v.decode() for k, v in wire.headers},
                "payload": json.loads(wire.value),
            }
        ],
    }


def _headers_schema(ce_type: str) -> dict[str, Any]:
    text: dict[str, Any] = {"type": "string", "minLength": 1}
    properties: dict[str, Any] = {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {**text, "description": "Unique per event; a redelivery keeps it."},
        "ce_source": {**text, "description": "URI-reference of the producing service."},
        "ce_type": {"type": "string", "const": ce_type},
        "ce_time": {"type": "string", "format": "date-time", "description": "RFC 3339, UTC."},
        "ce_subject": {**text, "description": "Id of the aggregate; equals the Kafka key."},
        "content-type": {"type": "string", "const": "application/json"},
    }
    return {"type": "object", "required": sorted(properties), "properties": properties}
