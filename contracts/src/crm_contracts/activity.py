"""Events of the `activity` aggregate, published on ``crm.activity.events.v1``.

Every event carries ``activity_id`` and ``customer_id`` so segmentation can count without a
lookup. Events that change what the calendar shows (planned, moved, retyped, reassigned)
carry the activity's complete calendar view *after* the change (owner, type, channel,
subject, times), so calendar-sync can apply each one as an idempotent upsert guarded by
``version``, whatever it saw before. The customer's name is not repeated here: it belongs
to ``crm.customers.v1``.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Self
from uuid import UUID

from pydantic import Field, NonNegativeInt, model_validator

from crm_contracts.base import ContractModel, Event
from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason
from crm_contracts.primitives import (
    Filename,
    Id,
    MediaType,
    Money,
    Note,
    ProfileText,
    Reason,
    Sha256,
    Subject,
    Uri,
    UserId,
    UtcDateTime,
)


def _check_span(starts_at: datetime, ends_at: datetime, what: str) -> None:
    if ends_at <= starts_at:
        raise ValueError(f"{what}: ends_at must be after starts_at")


class DiscoveryProfile(ContractModel):
    """The customer's discovery profile ("kundeafdækning"), filled in at a discovery meeting."""

    business: ProfileText
    situation: ProfileText
    challenges: ProfileText
    goals_and_plans: ProfileText
    advertising_needs: ProfileText
    potential_dkk: Money | None = None
    competitors: ProfileText
    strategy: ProfileText
    unique_traits: ProfileText


class ActivityEvent(Event):
    """Common fields of every activity event; the Kafka key is ``activity_id``."""

    activity_id: UUID
    customer_id: Id


class ActivityPlanned(ActivityEvent):
    """An activity was planned (R5) and should appear in the owner's calendar (R7)."""

    ce_type: ClassVar[str] = "crm.activity.planned.v1"

    owner: UserId
    type: ActivityType
    channel: Channel
    subject: Subject
    starts_at: UtcDateTime
    ends_at: UtcDateTime
    agenda: Note | None = None

    @model_validator(mode="after")
    def _span(self) -> Self:
        _check_span(self.starts_at, self.ends_at, "planned time")
        return self


class ActivityMoved(ActivityEvent):
    """A planned activity got a new time, e.g. the customer did not answer (R1)."""

    ce_type: ClassVar[str] = "crm.activity.moved.v1"

    owner: UserId
    type: ActivityType
    channel: Channel
    subject: Subject
    from_starts_at: UtcDateTime
    from_ends_at: UtcDateTime
    to_starts_at: UtcDateTime
    to_ends_at: UtcDateTime
    reason: MoveReason
    note: Note | None = None

    @model_validator(mode="after")
    def _spans(self) -> Self:
        _check_span(self.from_starts_at, self.from_ends_at, "previous time")
        _check_span(self.to_starts_at, self.to_ends_at, "new time")
        return self


class ActivityRetyped(ActivityEvent):
    """A planned activity changed form (R2); the old type stays in history."""

    ce_type: ClassVar[str] = "crm.activity.retyped.v1"

    owner: UserId
    subject: Subject
    starts_at: UtcDateTime
    ends_at: UtcDateTime
    from_type: ActivityType
    to_type: ActivityType
    from_channel: Channel
    to_channel: Channel
    reason: Reason | None = None

    @model_validator(mode="after")
    def _span(self) -> Self:
        _check_span(self.starts_at, self.ends_at, "planned time")
        return self


class ActivityReassigned(ActivityEvent):
    """A planned activity moved to another consultant's calendar."""

    ce_type: ClassVar[str] = "crm.activity.reassigned.v1"

    from_owner: UserId
    to_owner: UserId
    type: ActivityType
    channel: Channel
    subject: Subject
    starts_at: UtcDateTime
    ends_at: UtcDateTime
    reason: Reason | None = Field(
        default=None, description="Why, e.g. the customer got another consultant."
    )

    @model_validator(mode="after")
    def _span(self) -> Self:
        _check_span(self.starts_at, self.ends_at, "planned time")
        return self


class ActivityCompleted(ActivityEvent):
    """A planned activity was held and its result recorded (R6, R7)."""

    ce_type: ClassVar[str] = "crm.activity.completed.v1"

    owner: UserId
    type: ActivityType
    channel: Channel
    note: Note
    next_step: Note
    completed_at: UtcDateTime = Field(description="When the activity was held (UTC).")
    discovery_profile: DiscoveryProfile | None = None
    next_activity_id: UUID | None = Field(
        default=None, description="The follow-up activity planned at the same time (R7)."
    )


class ActivityCancelled(ActivityEvent):
    """A planned activity will not take place; its calendar entry should go."""

    ce_type: ClassVar[str] = "crm.activity.cancelled.v1"

    owner: UserId
    reason: Reason
    next_activity_id: UUID | None = Field(
        default=None, description="The activity planned in its place, in the same save (R8)."
    )


class ActivityRegistered(ActivityEvent):
    """An activity held without having been planned in the CRM, recorded after the fact
    (R3, R4). It counts towards the targets like a completed one."""

    ce_type: ClassVar[str] = "crm.activity.registered.v1"

    owner: UserId
    type: ActivityType
    channel: Channel
    held_at: UtcDateTime = Field(description="When the unplanned activity took place (UTC).")
    booked: bool = Field(
        default=False, description="Agreed with the customer beforehand, though not planned."
    )
    imported: bool = Field(
        default=False,
        description="Brought over from the previous CRM when going live; counts like any "
        "other, never goes to a calendar.",
    )
    subject: Subject | None = None
    note: Note
    next_step: Note | None = None
    discovery_profile: DiscoveryProfile | None = None
    next_activity_id: UUID | None = None


class AttachmentAdded(ActivityEvent):
    """A document was attached to an activity (R6, R9); the bytes live at ``uri``."""

    ce_type: ClassVar[str] = "crm.activity.attachment_added.v1"

    attachment_id: UUID
    kind: AttachmentKind
    filename: Filename
    media_type: MediaType
    size: NonNegativeInt = Field(description="Size in bytes.")
    sha256: Sha256 = Field(description="Lower-case hex SHA-256 of the content.")
    uri: Uri


class ActivityEdited(ActivityEvent):
    """A planned activity's subject or agenda was edited; the calendar entry follows."""

    ce_type: ClassVar[str] = "crm.activity.edited.v1"

    owner: UserId
    type: ActivityType
    channel: Channel
    subject: Subject
    agenda: Note | None = None
    starts_at: UtcDateTime
    ends_at: UtcDateTime

    @model_validator(mode="after")
    def _span(self) -> Self:
        _check_span(self.starts_at, self.ends_at, "planned time")
        return self


ACTIVITY_EVENT_TYPES: tuple[type[ActivityEvent], ...] = (
    ActivityPlanned,
    ActivityMoved,
    ActivityRetyped,
    ActivityReassigned,
    ActivityCompleted,
    ActivityCancelled,
    ActivityRegistered,
    AttachmentAdded,
    ActivityEdited,
)
