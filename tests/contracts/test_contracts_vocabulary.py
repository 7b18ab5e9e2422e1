"""Enums, the type registry and the topic map."""

from __future__ import annotations

import json
import re

import pytest
from crm_contracts import (
    ACTIVITY_EVENTS,
    CALENDAR_SYNC,
    CUSTOMERS,
    MESSAGE_TYPES,
    R8_GAPS,
    REGISTRY,
    ActivityEvent,
    ActivityType,
    CalendarSyncStatus,
    Channel,
    CustomerSnapshot,
    FutureActivityGap,
    Message,
    Segment,
    SyncStatus,
    UnknownEventType,
    UnsupportedVersion,
    dead_letter,
    key_for,
    model_for,
    topic_for,
    type_of,
)
from crm_contracts.examples import example_messages
from crm_contracts.topics import TOPICS

# The tables of docs/domain.md ("Activity types" and "How an activity is held"), copied verbatim.
DOMAIN_ACTIVITY_LABELS = {
    "discovery_meeting": "Afdækningsmøde",
    "proposal_meeting": "Oplægsmøde",
    "status_meeting": "Statusmøde",
    "sales_meeting": "Aftalt salgsmøde",
    "unannounced_visit": "Uanmeldt besøg",
    "contact": "Kontakt",
}
DOMAIN_CHANNEL_LABELS = {
    "physical": "Fysisk",
    "phone": "Telefonisk",
    "video": "Online",
    "email": "E-mail",
}


def test_activity_type_labels_match_domain() -> None:
    assert {t.value: t.label for t in ActivityType} == DOMAIN_ACTIVITY_LABELS


def test_channel_labels_match_domain() -> None:
    assert {c.value: c.label for c in Channel} == DOMAIN_CHANNEL_LABELS


def test_segment_codes_and_labels() -> None:
    assert [s.value for s in Segment] == ["annual_agreement", "A", "B", "C", "D", "unsegmented"]
    assert Segment.ANNUAL_AGREEMENT.label == "Årsaftale"
    assert Segment.UNSEGMENTED.label == "Usegmenteret"
    assert Segment.B.label == "B"


def test_sync_status_values() -> None:
    assert {s.value for s in SyncStatus} == {
        "pending",
        "synced",
        "failed",
        "deleted_in_outlook",
        "removed",
        "mailbox_unavailable",
    }


def test_json_carries_codes_never_labels() -> None:
    dumped = "".join(m.model_dump_json() for m in example_messages())
    for label in (*DOMAIN_ACTIVITY_LABELS.values(), *DOMAIN_CHANNEL_LABELS.values()):
        assert json.dumps(label, ensure_ascii=False) not in dumped


def test_examples_cover_every_registered_type_once() -> None:
    assert [type(m) for m in example_messages()] == list(MESSAGE_TYPES)


@pytest.mark.parametrize("model", MESSAGE_TYPES, ids=lambda m: m.__name__)
def test_type_strings_follow_the_convention(model: type[Message]) -> None:
    assert re.fullmatch(r"crm\.[a-z_]+\.[a-z_]+\.v[1-9]\d*", model.ce_type)
    assert REGISTRY[model.ce_type] is model
    assert model_for(model.ce_type) is model
    assert type_of(model) == model.ce_type


def test_registry_holds_the_published_types() -> None:
    assert sorted(REGISTRY) == [
        "crm.activity.attachment_added.v1",
        "crm.activity.cancelled.v1",
        "crm.activity.completed.v1",
        "crm.activity.edited.v1",
        "crm.activity.moved.v1",
        "crm.activity.planned.v1",
        "crm.activity.reassigned.v1",
        "crm.activity.registered.v1",
        "crm.activity.retyped.v1",
        "crm.calendar.sync_status.v1",
        "crm.customer.snapshot.v1",
        "crm.future_activity_gap.closed.v1",
        "crm.future_activity_gap.opened.v1",
    ]


def test_model_for_tells_unknown_from_unsupported() -> None:
    with pytest.raises(UnsupportedVersion):
        model_for("crm.customer.snapshot.v2")
    with pytest.raises(UnknownEventType):
        model_for("crm.customer.deleted.v1")
    with pytest.raises(UnknownEventType):
        model_for("")


def test_type_of_refuses_unregistered_models() -> None:
    with pytest.raises(TypeError, match="not a registered"):
        type_of(Message)


def test_topic_names() -> None:
    assert ACTIVITY_EVENTS == "crm.activity.events.v1"
    assert CUSTOMERS == "crm.customers.v1"
    assert CALENDAR_SYNC == "crm.calendar.sync.v1"
    assert dead_letter(CUSTOMERS) == "crm.customers.v1.dlq"
    assert TOPICS[CUSTOMERS].compacted
    assert not TOPICS[ACTIVITY_EVENTS].compacted


@pytest.mark.parametrize("message", example_messages(), ids=lambda m: type_of(m))
def test_every_message_has_one_topic_and_an_aggregate_key(message: Message) -> None:
    match message:
        case ActivityEvent():
            assert (topic_for(message), key_for(message)) == (
                ACTIVITY_EVENTS,
                str(message.activity_id),
            )
        case CustomerSnapshot():
            assert (topic_for(message), key_for(message)) == (CUSTOMERS, message.customer_id)
        case CalendarSyncStatus():
            assert (topic_for(message), key_for(message)) == (
                CALENDAR_SYNC,
                str(message.activity_id),
            )
        case FutureActivityGap():
            assert (topic_for(message), key_for(message)) == (R8_GAPS, message.customer_id)
        case _:
            pytest.fail(f"no topic expectation for {type(message).__name__}")


def test_every_registered_type_is_on_exactly_one_topic() -> None:
    placed = [m for topic in TOPICS.values() for m in topic.messages]
    assert sorted(m.__name__ for m in placed) == sorted(m.__name__ for m in MESSAGE_TYPES)
