"""Closed vocabularies shared by every service.

JSON always carries the member's value (the code); the Danish label is presentation only
(UI, Outlook) and may be reworded without a contract change, so it never goes on the wire.
Labels live in mappings beside each enum rather than in tuple-valued members, which keeps
``.value`` a plain ``str`` for type checkers and serialisers.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class ActivityType(StrEnum):
    """What kind of activity it is (docs/domain.md: activity types)."""

    DISCOVERY_MEETING = "discovery_meeting"
    PROPOSAL_MEETING = "proposal_meeting"
    STATUS_MEETING = "status_meeting"
    SALES_MEETING = "sales_meeting"
    UNANNOUNCED_VISIT = "unannounced_visit"
    CONTACT = "contact"

    @property
    def label(self) -> str:
        """Danish label shown in the UI and in Outlook."""
        return ACTIVITY_TYPE_LABELS[self]


class Channel(StrEnum):
    """How an activity is held."""

    PHYSICAL = "physical"
    PHONE = "phone"
    VIDEO = "video"
    EMAIL = "email"

    @property
    def label(self) -> str:
        """Danish label shown in the UI and in Outlook."""
        return CHANNEL_LABELS[self]


class Segment(StrEnum):
    """Customer segment by annual potential, or by an active annual agreement."""

    ANNUAL_AGREEMENT = "annual_agreement"
    A = "A"
    B = "B"
    C = "C"
    D = "D"
    UNSEGMENTED = "unsegmented"

    @property
    def label(self) -> str:
        """Danish label shown in the UI."""
        return SEGMENT_LABELS[self]


class MoveReason(StrEnum):
    """Why a planned activity was moved (R1)."""

    NO_ANSWER = "no_answer"
    CUSTOMER_REQUEST = "customer_request"
    CONSULTANT = "consultant"
    OTHER = "other"


class AttachmentKind(StrEnum):
    """What an attached document is; R9 needs `proposal` to recognise the written proposal."""

    PROPOSAL = "proposal"
    AGREEMENT = "agreement"
    EMAIL = "email"
    OTHER = "other"


class SyncStatus(StrEnum):
    """State of an activity's calendar entry as seen by calendar-sync."""

    PENDING = "pending"
    SYNCED = "synced"
    FAILED = "failed"
    DELETED_IN_OUTLOOK = "deleted_in_outlook"
    REMOVED = "removed"
    # The owner's mailbox refuses us (licence gone, soft-deleted, renamed, consent or an
    # application access policy): an administrator can fix it; synced once it is back.
    MAILBOX_UNAVAILABLE = "mailbox_unavailable"


ACTIVITY_TYPE_LABELS: Final[Mapping[ActivityType, str]] = {
    ActivityType.DISCOVERY_MEETING: "Afdækningsmøde",
    ActivityType.PROPOSAL_MEETING: "Oplægsmøde",
    ActivityType.STATUS_MEETING: "Statusmøde",
    ActivityType.SALES_MEETING: "Aftalt salgsmøde",
    ActivityType.UNANNOUNCED_VISIT: "Uanmeldt besøg",
    ActivityType.CONTACT: "Kontakt",
}

CHANNEL_LABELS: Final[Mapping[Channel, str]] = {
    Channel.PHYSICAL: "Fysisk",
    Channel.PHONE: "Telefonisk",
    Channel.VIDEO: "Online",
    Channel.EMAIL: "E-mail",
}

SEGMENT_LABELS: Final[Mapping[Segment, str]] = {
    Segment.ANNUAL_AGREEMENT: "Årsaftale",
    Segment.A: "A",
    Segment.B: "B",
    Segment.C: "C",
    Segment.D: "D",
    Segment.UNSEGMENTED: "Usegmenteret",
}


class GapOpenedBecause(StrEnum):
    """Why a prioritized customer was left without a future activity (R8)."""

    BECAME_PRIORITIZED = "became_prioritized"  # new potential, agreement, programme, import
    OVERDUE = "overdue"  # its last planned activity passed without being held or moved


class GapClosedBecause(StrEnum):
    """Why an R8 gap closed."""

    PLANNED = "planned"  # a future activity was planned (or an overdue one moved ahead)
    NO_LONGER_PRIORITIZED = "no_longer_prioritized"
    CUSTOMER_REMOVED = "customer_removed"
