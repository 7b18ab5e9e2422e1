"""R8 gaps: a prioritized customer without a future activity, from the moment it happens.

Published on ``crm.activity.r8-gaps.v1`` keyed by ``customer_id`` so that each customer's
openings and closings stay in order. A reminder system may act on an opening (tell the owner,
escalate after a while) and stand down on the closing. ``version`` is the version of the
activity service's file on the customer, so a consumer can ignore what it has already seen.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from crm_contracts.base import Event
from crm_contracts.enums import GapClosedBecause, GapOpenedBecause
from crm_contracts.primitives import Id, UserId, UtcDateTime


class FutureActivityGap(Event):
    """Common fields of both messages; the Kafka key is ``customer_id``."""

    customer_id: Id


class FutureActivityGapOpened(FutureActivityGap):
    """A prioritized customer has no future activity any more (R8)."""

    ce_type: ClassVar[str] = "crm.future_activity_gap.opened.v1"

    since: UtcDateTime = Field(description="Since when the customer has had none (UTC).")
    why: GapOpenedBecause
    segment: Id = Field(description="The customer's segment when the gap opened.")
    owner: UserId | None = Field(default=None, description="The customer's consultant.")
    activity_id: UUID | None = Field(
        default=None, description="The activity that was the last one (overdue or closed)."
    )


class FutureActivityGapClosed(FutureActivityGap):
    """The customer has a future activity again, or R8 no longer applies to it."""

    ce_type: ClassVar[str] = "crm.future_activity_gap.closed.v1"

    since: UtcDateTime = Field(description="When the gap had opened (UTC).")
    why: GapClosedBecause
    activity_id: UUID | None = Field(
        default=None, description="The activity planned (or moved ahead) that closed the gap."
    )


GAP_EVENT_TYPES: tuple[type[FutureActivityGap], ...] = (
    FutureActivityGapOpened,
    FutureActivityGapClosed,
)
