"""One realistic, fixed example of every message type.

Used for the examples in the AsyncAPI documents and as ready-made fixtures for any team's
tests. Fixed ids and times keep the generated documents deterministic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from crm_contracts.activity import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityEdited,
    ActivityMoved,
    ActivityPlanned,
    ActivityReassigned,
    ActivityRegistered,
    ActivityRetyped,
    AttachmentAdded,
    DiscoveryProfile,
)
from crm_contracts.base import Message
from crm_contracts.calendar_sync import CalendarSyncStatus
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
from crm_contracts.gaps import FutureActivityGapClosed, FutureActivityGapOpened

ACTIVITY_ID: Final = UUID("0b6f1f4e-3c1a-4f4e-9a57-8d2f6c1e5a01")
NEXT_ACTIVITY_ID: Final = UUID("5d0c2a9b-7e41-4c3f-b1d8-2f9e6a7c4b02")
REGISTERED_ACTIVITY_ID: Final = UUID("c3d2e1f0-a9b8-4c7d-8e6f-5a4b3c2d1e04")
ATTACHMENT_ID: Final = UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c03")
CUSTOMER_ID: Final = "cust-1042"
CONSULTANT: Final = "anne@example.dk"
OTHER_CONSULTANT: Final = "bo@example.dk"


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def _common(version: int, occurred_at: datetime, activity_id: UUID = ACTIVITY_ID) -> dict[str, Any]:
    return {
        "version": version,
        "actor": CONSULTANT,
        "occurred_at": occurred_at,
        "activity_id": activity_id,
        "customer_id": CUSTOMER_ID,
    }


def example_messages() -> tuple[Message, ...]:
    """One instance of every registered message type, in registry order."""
    calendar_view: dict[str, Any] = {
        "channel": Channel.PHYSICAL,
        "subject": "Annonceplan for foråret",
    }
    profile = DiscoveryProfile(
        business="Family-owned garden centre with two shops.",
        situation="Footfall down 10% since last spring.",
        challenges="Reaching younger home owners.",
        goals_and_plans="Open a webshop in the autumn.",
        advertising_needs="Spring campaign in print and online.",
        potential_dkk=Decimal("150000.00"),
        competitors="Two DIY chains in the region.",
        strategy="Quality and local advice.",
        unique_traits="Own nursery.",
    )
    return (
        ActivityPlanned(
            **_common(1, _at(3, 8)),
            owner=CONSULTANT,
            type=ActivityType.DISCOVERY_MEETING,
            starts_at=_at(10, 9),
            ends_at=_at(10, 10),
            agenda="Go through the discovery profile.",
            **calendar_view,
        ),
        ActivityMoved(
            **_common(2, _at(10, 9, 5)),
            owner=CONSULTANT,
            type=ActivityType.DISCOVERY_MEETING,
            from_starts_at=_at(10, 9),
            from_ends_at=_at(10, 10),
            to_starts_at=_at(12, 13),
            to_ends_at=_at(12, 14),
            reason=MoveReason.NO_ANSWER,
            **calendar_view,
        ),
        ActivityRetyped(
            **_common(3, _at(11, 15)),
            owner=CONSULTANT,
            subject="Annonceplan for foråret",
            starts_at=_at(12, 13),
            ends_at=_at(12, 14),
            from_type=ActivityType.DISCOVERY_MEETING,
            to_type=ActivityType.SALES_MEETING,
            from_channel=Channel.PHYSICAL,
            to_channel=Channel.VIDEO,
            reason="The customer wants to buy right away.",
        ),
        ActivityReassigned(
            **_common(4, _at(11, 16)),
            from_owner=CONSULTANT,
            to_owner=OTHER_CONSULTANT,
            type=ActivityType.SALES_MEETING,
            channel=Channel.VIDEO,
            subject="Annonceplan for foråret",
            starts_at=_at(12, 13),
            ends_at=_at(12, 14),
        ),
        ActivityCompleted(
            **_common(6, _at(12, 14, 30)),
            owner=OTHER_CONSULTANT,
            type=ActivityType.DISCOVERY_MEETING,
            channel=Channel.PHYSICAL,
            note="Webshop opens in September; wants online reach among home owners.",
            next_step="Proposal meeting in two weeks.",
            completed_at=_at(12, 14),
            discovery_profile=profile,
            next_activity_id=NEXT_ACTIVITY_ID,
        ),
        ActivityCancelled(
            **_common(5, _at(11, 17)),
            owner=OTHER_CONSULTANT,
            reason="The customer closed the shop.",
        ),
        ActivityRegistered(
            **_common(1, _at(14, 12), REGISTERED_ACTIVITY_ID),
            owner=CONSULTANT,
            type=ActivityType.UNANNOUNCED_VISIT,
            channel=Channel.PHYSICAL,
            held_at=_at(14, 11),
            note="Handed over the spring sales letter; the owner asked for prices.",
            next_step="Call on Monday with prices.",
        ),
        AttachmentAdded(
            **_common(7, _at(12, 15)),
            attachment_id=ATTACHMENT_ID,
            kind=AttachmentKind.PROPOSAL,
            filename="oplaeg-foraar-2025.pdf",
            media_type="application/pdf",
            size=182_044,
            sha256="3f7c1b9e0a4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b",
            uri="s3://crm-attachments/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c03",
        ),
        ActivityEdited(
            **_common(8, _at(11, 17)),
            owner=OTHER_CONSULTANT,
            type=ActivityType.SALES_MEETING,
            channel=Channel.VIDEO,
            subject="Annonceplan for foråret og sommeren",
            agenda="1. Forårskampagnen 2. Sommertillæg",
            starts_at=_at(12, 13),
            ends_at=_at(12, 14),
        ),
        CustomerSnapshot(
            version=3,
            actor="segmentation",
            customer_id=CUSTOMER_ID,
            name="Havecenter Nord ApS",
            cvr="12345678",
            owner=CONSULTANT,
            potential_dkk=Decimal("390000.00"),
            segment=Segment.ANNUAL_AGREEMENT,
            prioritized=True,
            annual_agreement=AnnualAgreement(
                starts_on=date(2025, 1, 1), ends_on=date(2025, 12, 31)
            ),
            updated_at=_at(12, 14, 31),
        ),
        CalendarSyncStatus(
            version=2,
            actor="calendar-sync",
            occurred_at=_at(3, 8, 1),
            activity_id=ACTIVITY_ID,
            mailbox="anne@example.dk",
            status=SyncStatus.SYNCED,
            outlook_event_id="AAMkAGI2TG93AAA=",
            activity_version=1,
        ),
        FutureActivityGapOpened(
            version=7,
            actor="activity",
            occurred_at=_at(4, 9),
            customer_id=CUSTOMER_ID,
            since=_at(4, 9),
            why=GapOpenedBecause.BECAME_PRIORITIZED,
            segment="A",
            owner=CONSULTANT,
        ),
        FutureActivityGapClosed(
            version=8,
            actor=CONSULTANT,
            occurred_at=_at(4, 10),
            customer_id=CUSTOMER_ID,
            since=_at(4, 9),
            why=GapClosedBecause.PLANNED,
            activity_id=ACTIVITY_ID,
        ),
    )
