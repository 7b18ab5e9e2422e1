"""Request and response bodies of the activity API (pydantic), with explicit limits."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason
from crm_contracts.primitives import (
    NOTE_MAX,
    REASON_MAX,
    Filename,
    MediaType,
    Sha256,
    Subject,
    Uri,
    UserId,
    text,
)
from crm_contracts.primitives import Id as CustomerId
from crm_contracts.primitives import Reason as RequiredReason
from crm_platform.values import Instant, MoneyIn, UtcInstant
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from activity.domain import (
    Activity,
    AttachmentRequest,
    CompletionRequest,
    PlanRequest,
    RegistrationRequest,
)
from activity.imports import ImportResult
from activity.rules import VALUE_TEST

# Optional free text may be empty here; the rules decide when it must say something (R4, R6).
Note = Annotated[str, text(NOTE_MAX)]
Reason = Annotated[str, text(REASON_MAX)]

R4_DESCRIPTION = (
    "What happened. For a contact-like activity (not physical) the note must add value (R4): "
    f"{VALUE_TEST}; otherwise 422 with code `R4`."
)
HELD_AT = (
    "When it was held (ISO 8601 with an offset); never in the future, and it decides the "
    "year the activity counts in (R6)."
)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class PlanIn(Body):
    customer_id: CustomerId
    owner: UserId = Field(description="The consultant whose calendar gets the activity.")
    type: ActivityType
    channel: Channel
    subject: Subject = Field(description="What the activity is about (R5).")
    starts_at: Instant = Field(description="ISO 8601 with an offset; must be future.")
    ends_at: Instant
    agenda: Note | None = None

    def to_request(self) -> PlanRequest:
        return PlanRequest(
            self.customer_id,
            self.owner,
            self.type,
            self.channel,
            self.subject,
            self.starts_at,
            self.ends_at,
            self.agenda,
        )


class MoveIn(Body):
    starts_at: Instant = Field(description="The new time; must be in the future (R1).")
    ends_at: Instant | None = Field(default=None, description="Default: keeps the duration.")
    reason: MoveReason = Field(description="Why it moved, e.g. `no_answer` (R1).")
    note: Note | None = None


class RetypeIn(Body):
    type: ActivityType
    channel: Channel | None = None
    reason: Reason | None = None


class EditIn(Body):
    """A planned activity's subject and agenda; give at least one. `agenda: null` clears it."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    # Optional but never null: a subject is changed, not removed (R5).
    subject: Subject | SkipJsonSchema[None] = Field(
        default=None, description="What it is about (R5)."
    )
    agenda: Note | None = None

    @model_validator(mode="after")
    def _something(self) -> EditIn:
        if not self.model_fields_set & {"subject", "agenda"}:
            raise ValueError("give a new subject, a new agenda, or both")
        if "subject" in self.model_fields_set and self.subject is None:
            raise ValueError("subject cannot be removed, only changed (R5)")
        return self


class ReassignIn(Body):
    owner: UserId
    reason: Reason | None = None


class AttachmentIn(Body):
    kind: AttachmentKind = Field(description="`proposal` satisfies R9.")
    filename: Filename
    media_type: MediaType
    size: int = Field(ge=0, le=10 * 1024**3)
    sha256: Sha256
    uri: Uri

    def to_request(self) -> AttachmentRequest:
        return AttachmentRequest(
            self.kind, self.filename, self.media_type, self.size, self.sha256, self.uri
        )


class DiscoveryProfileIn(Body):
    """Every field is needed to complete a discovery meeting (R10)."""

    business: Note | None = None
    situation: Note | None = None
    challenges: Note | None = None
    goals_and_plans: Note | None = None
    advertising_needs: Note | None = None
    potential_dkk: MoneyIn | None = None
    competitors: Note | None = None
    strategy: Note | None = None
    unique_traits: Note | None = None


class CompleteIn(Body):
    note: Note = Field(
        description="The most important, concrete information (R6). A note that only says "
        "the customer did not answer is refused with R1: move the activity instead."
    )
    next_step: Note = Field(description="What happens next (R6).")
    held_at: Instant | None = Field(
        default=None, description=HELD_AT + " Default: now; not before it was planned."
    )
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)
    discovery_profile: DiscoveryProfileIn | None = Field(
        default=None, description="Required to complete a discovery meeting (R10)."
    )
    next_activity: PlanIn | None = Field(
        default=None,
        description="The next activity on the customer, saved atomically (R7); "
        "required for a prioritized customer's last future activity (R8).",
    )

    def to_request(self) -> CompletionRequest:
        return CompletionRequest(
            note=self.note,
            next_step=self.next_step,
            held_at=self.held_at,
            attachments=[a.to_request() for a in self.attachments],
            discovery_profile=_profile(self.discovery_profile),
            next_activity=self.next_activity.to_request() if self.next_activity else None,
        )


class CancelIn(Body):
    reason: RequiredReason
    next_activity: PlanIn | None = Field(
        default=None,
        description="The activity that replaces this one, saved atomically; required for a "
        "prioritized customer's last future activity (R8).",
    )


class RegistrationIn(Body):
    """An activity held without having been planned in the CRM (R3, R4)."""

    customer_id: CustomerId
    owner: UserId
    type: ActivityType = Field(
        description="What it was. Physical and not booked: `unannounced_visit` (R3); physical "
        "and booked: the meeting it was, with that type's rules (R9, R10)."
    )
    channel: Channel
    booked: bool = Field(default=False, description="Agreed with the customer beforehand (R3, R4).")
    held_at: Instant = Field(description=HELD_AT)
    subject: Subject | None = None
    note: Note = Field(description=R4_DESCRIPTION)
    next_step: Note | None = None
    attachments: list[AttachmentIn] = Field(
        default_factory=list,
        max_length=20,
        description="A proposal meeting needs its proposal (R9).",
    )
    discovery_profile: DiscoveryProfileIn | None = Field(
        default=None, description="Required for a discovery meeting (R10)."
    )
    next_activity: PlanIn | None = None

    def to_request(self) -> RegistrationRequest:
        return RegistrationRequest(
            customer_id=self.customer_id,
            owner=self.owner,
            type=self.type,
            channel=self.channel,
            held_at=self.held_at,
            note=self.note,
            booked=self.booked,
            subject=self.subject,
            next_step=self.next_step,
            discovery_profile=_profile(self.discovery_profile),
            next_activity=self.next_activity.to_request() if self.next_activity else None,
            attachments=[a.to_request() for a in self.attachments],
        )


def _profile(profile: DiscoveryProfileIn | None) -> dict[str, Any] | None:
    return profile.model_dump() if profile else None


class AttachmentOut(BaseModel):
    attachment_id: UUID
    kind: AttachmentKind
    filename: str
    media_type: str
    size: int
    sha256: str
    uri: str


class WarningOut(BaseModel):
    """Accepted, but worth a look: `overlap` names another planned activity of the same
    owner at the same time."""

    code: str
    activity_id: UUID


class ActivityOut(BaseModel):
    id: UUID
    version: int
    customer_id: str
    owner: str
    type: ActivityType
    type_label: str
    channel: Channel
    channel_label: str
    subject: str | None
    agenda: str | None
    status: str
    registered: bool = Field(description="Held without having been planned in the CRM.")
    booked: bool = Field(description="A registered activity agreed with the customer beforehand.")
    imported: bool = Field(description="Brought over from the previous CRM.")
    starts_at: UtcInstant
    ends_at: UtcInstant
    note: str | None
    next_step: str | None
    completed_at: UtcInstant | None = Field(description="When it was held (R6).")
    next_activity_id: UUID | None
    attachments: list[AttachmentOut]
    warnings: list[WarningOut] = Field(
        default_factory=list, description="After a plan or a move: e.g. an `overlap`."
    )

    @classmethod
    def of(cls, activity: Activity, warnings: list[WarningOut] | None = None) -> ActivityOut:
        type_, channel = ActivityType(activity.type), Channel(activity.channel)
        return cls(
            id=activity.id,
            version=activity.version,
            customer_id=activity.customer_id,
            owner=activity.owner,
            type=type_,
            type_label=type_.label,
            channel=channel,
            channel_label=channel.label,
            subject=activity.subject,
            agenda=activity.agenda,
            status=activity.status,
            registered=activity.registered,
            booked=activity.booked,
            imported=activity.imported,
            starts_at=activity.starts_at,
            ends_at=activity.ends_at,
            note=activity.note,
            next_step=activity.next_step,
            completed_at=activity.completed_at,
            next_activity_id=activity.next_activity_id,
            attachments=[AttachmentOut(**a) for a in activity.attachments],
            warnings=warnings or [],
        )


class HistoryEntry(BaseModel):
    version: int
    event: str = Field(description="What happened, e.g. `moved`.")
    at: UtcInstant = Field(description="When (UTC).")
    actor: str | None = Field(description="Who: the user id of the caller.")
    why: str | None = Field(description="The reason or note given, when there was one.")
    details: dict[str, Any]


class DiscoveryProfileOut(BaseModel):
    customer_id: str
    revision: int = Field(description="1 for the first profile, +1 for every later one.")
    recorded_at: UtcInstant
    recorded_by: str
    activity_id: UUID
    profile: dict[str, str]


class Rejected(BaseModel):
    line: int = Field(description="The row's line in the file (the header is line 1).")
    external_id: str | None
    reasons: list[str]


class ImportOut(BaseModel):
    imported: int = Field(description="Activities brought over now.")
    unchanged: int = Field(description="Rows imported by an earlier run of the same file.")
    rejected: list[Rejected]

    @classmethod
    def of(cls, result: ImportResult) -> ImportOut:
        return cls(
            imported=result.imported,
            unchanged=result.unchanged,
            rejected=[
                Rejected(line=p.line, external_id=p.external_id, reasons=p.reasons)
                for p in result.rejected
            ],
        )
