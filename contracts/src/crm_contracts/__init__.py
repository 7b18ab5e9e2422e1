"""crm_contracts: the versioned event contracts the CRM services exchange over Kafka.

Import models, the codec and topic names from here; the submodules hold the details.
"""

from crm_contracts.activity import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityEdited,
    ActivityEvent,
    ActivityMoved,
    ActivityPlanned,
    ActivityReassigned,
    ActivityRegistered,
    ActivityRetyped,
    AttachmentAdded,
    DiscoveryProfile,
)
from crm_contracts.base import ContractModel, Event, Message
from crm_contracts.calendar_sync import CalendarSyncStatus
from crm_contracts.cloudevents import Decoded, decode, encode, is_tombstone, tombstone
from crm_contracts.customer import AnnualAgreement, CustomerSnapshot
from crm_contracts.enums import (
    ActivityType,
    AttachmentKind,
    Channel,
    GapClosedBecause,
    GapOpenedBecause,
    MoveReason,
    Segment,
    SyncStatus,
)
from crm_contracts.errors import (
    ContractError,
    InvalidEnvelope,
    InvalidHeader,
    InvalidMessage,
    MissingHeader,
    UnknownEventType,
    UnsupportedSpecVersion,
    UnsupportedVersion,
)
from crm_contracts.gaps import (
    FutureActivityGap,
    FutureActivityGapClosed,
    FutureActivityGapOpened,
)
from crm_contracts.registry import MESSAGE_TYPES, REGISTRY, model_for, type_of
from crm_contracts.topics import (
    ACTIVITY_EVENTS,
    CALENDAR_SYNC,
    CUSTOMERS,
    R8_GAPS,
    dead_letter,
    key_for,
    topic_for,
)
from crm_contracts.wire import WireMessage

__all__ = [
    "ACTIVITY_EVENTS",
    "CALENDAR_SYNC",
    "CUSTOMERS",
    "MESSAGE_TYPES",
    "R8_GAPS",
    "REGISTRY",
    "ActivityCancelled",
    "ActivityCompleted",
    "ActivityEdited",
    "ActivityEvent",
    "ActivityMoved",
    "ActivityPlanned",
    "ActivityReassigned",
    "ActivityRegistered",
    "ActivityRetyped",
    "ActivityType",
    "AnnualAgreement",
    "AttachmentAdded",
    "AttachmentKind",
    "CalendarSyncStatus",
    "Channel",
    "ContractError",
    "ContractModel",
    "CustomerSnapshot",
    "Decoded",
    "DiscoveryProfile",
    "Event",
    "FutureActivityGap",
    "FutureActivityGapClosed",
    "FutureActivityGapOpened",
    "GapClosedBecause",
    "GapOpenedBecause",
    "InvalidEnvelope",
    "InvalidHeader",
    "InvalidMessage",
    "Message",
    "MissingHeader",
    "MoveReason",
    "Segment",
    "SyncStatus",
    "UnknownEventType",
    "UnsupportedSpecVersion",
    "UnsupportedVersion",
    "WireMessage",
    "dead_letter",
    "decode",
    "encode",
    "is_tombstone",
    "key_for",
    "model_for",
    "tombstone",
    "topic_for",
    "type_of",
]
