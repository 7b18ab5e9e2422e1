"""Aggregates of the activity service: an `Activity`, and a `CustomerFile` per customer.

Commands validate against the rules first and only then trigger an event, so replaying the
stored events never re-checks a rule against a later "now". Events store plain values
(codes, UTC datetimes, strings) so the stored form does not depend on enum classes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from crm_contracts.enums import (
    ActivityType,
    AttachmentKind,
    Channel,
    GapClosedBecause,
    GapOpenedBecause,
    MoveReason,
)
from crm_platform.errors import DomainError
from eventsourcing.domain import Aggregate

from activity.rules import (
    CustomerEntry,
    DiscoveryProfile,
    lacks_future_activity,
    require_answered,
    require_booking_decides_type,
    require_changed_form,
    require_discovery_profile,
    require_future,
    require_held,
    require_move_reason,
    require_new_time,
    require_outcome,
    require_proposal,
    require_span,
    require_subject,
    require_valuable_note,
    require_visit_is_physical,
)

PLANNED, COMPLETED, CANCELLED = "planned", "completed", "cancelled"
_NAMESPACE = uuid.UUID("6f1d4c8e-29a4-4c53-9d0e-9a1b6c0f2e71")


# -- commands: what a consultant asks, passed as one value from the API to the aggregate ----


@dataclass(frozen=True, slots=True)
class PlanRequest:
    customer_id: str
    owner: str
    type: ActivityType
    channel: Channel
    subject: str
    starts_at: datetime
    ends_at: datetime
    agenda: str | None = None


@dataclass(frozen=True, slots=True)
class AttachmentRequest:
    kind: AttachmentKind
    filename: str
    media_type: str
    size: int
    sha256: str
    uri: str


@dataclass(frozen=True, slots=True)
class RegistrationRequest:
    """An activity held without having been planned in the CRM, registered after the fact
    (R3, R4): `booked` when it was agreed with the customer beforehand."""

    customer_id: str
    owner: str
    type: ActivityType
    channel: Channel
    held_at: datetime
    note: str
    booked: bool = False
    subject: str | None = None
    next_step: str | None = None
    discovery_profile: dict[str, Any] | None = None
    next_activity: PlanRequest | None = None
    attachments: Sequence[AttachmentRequest] = ()

    @property
    def proposal_attached(self) -> bool:
        return any(a.kind is AttachmentKind.PROPOSAL for a in self.attachments)


@dataclass(frozen=True, slots=True)
class ImportedActivity:
    """An activity held before the CRM went live, brought over from the previous system.

    Taken as it was recorded there: the guide's registration rules (R3's booking, R4's note,
    R9's proposal, R10's profile) judged the moment of registering, which is long past, so
    only what keeps the record sound is checked (a note, a time that has been, a physical
    visit). `external_id` is its id in the previous system: importing twice adds nothing.
    """

    external_id: str
    customer_id: str
    owner: str
    type: ActivityType
    channel: Channel
    held_at: datetime
    note: str
    subject: str | None = None

    @property
    def activity_id(self) -> UUID:
        return uuid.uuid5(_NAMESPACE, f"imported:{self.external_id}")


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """A planned activity was held (R6): what came of it, and the next activity (R7)."""

    note: str
    next_step: str
    held_at: datetime | None = None  # default: now
    attachments: Sequence[AttachmentRequest] = ()
    discovery_profile: dict[str, Any] | None = None
    next_activity: PlanRequest | None = None


class Activity(Aggregate):
    """One customer activity: planned → (moved | retyped | reassigned)* → completed | cancelled.

    A registered activity (held without being planned) starts out completed.
    """

    class Planned(Aggregate.Created):
        customer_id: str
        owner: str
        type: str
        channel: str
        subject: str
        starts_at: datetime
        ends_at: datetime
        agenda: str | None
        actor: str

    class Registered(Aggregate.Created):
        customer_id: str
        owner: str
        type: str
        channel: str
        subject: str | None
        held_at: datetime
        note: str
        next_step: str | None
        discovery_profile: dict[str, str] | None
        next_activity_id: UUID | None
        actor: str
        booked: bool = False
        imported: bool = False

    class Moved(Aggregate.Event):
        starts_at: datetime
        ends_at: datetime
        reason: str
        note: str | None
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.starts_at, aggregate.ends_at = self.starts_at, self.ends_at

    class Retyped(Aggregate.Event):
        type: str
        channel: str
        reason: str | None
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.type, aggregate.channel = self.type, self.channel

    class Reassigned(Aggregate.Event):
        owner: str
        actor: str
        reason: str | None = None

        def apply(self, aggregate: Any) -> None:
            aggregate.owner = self.owner

    class Edited(Aggregate.Event):
        subject: str
        agenda: str | None
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.subject, aggregate.agenda = self.subject, self.agenda

    class Completed(Aggregate.Event):
        note: str
        next_step: str
        discovery_profile: dict[str, str] | None
        next_activity_id: UUID | None
        actor: str
        # Events stored before `held_at` was recorded were held when they were completed.
        held_at: datetime | None = None

        def apply(self, aggregate: Any) -> None:
            aggregate.status = COMPLETED
            aggregate.note, aggregate.next_step = self.note, self.next_step
            aggregate.completed_at = self.held_at or self.timestamp
            aggregate.next_activity_id = self.next_activity_id

    class Cancelled(Aggregate.Event):
        reason: str
        actor: str
        next_activity_id: UUID | None = None

        def apply(self, aggregate: Any) -> None:
            aggregate.status = CANCELLED
            aggregate.next_activity_id = self.next_activity_id

    class AttachmentAdded(Aggregate.Event):
        attachment_id: UUID
        kind: str
        filename: str
        media_type: str
        size: int
        sha256: str
        uri: str
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.attachments.append(
                {
                    "attachment_id": self.attachment_id,
                    "kind": self.kind,
                    "filename": self.filename,
                    "media_type": self.media_type,
                    "size": self.size,
                    "sha256": self.sha256,
                    "uri": self.uri,
                }
            )

    def __init__(
        self,
        customer_id: str,
        owner: str,
        type: str,
        channel: str,
        subject: str | None = None,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        agenda: str | None = None,
        held_at: datetime | None = None,
        note: str | None = None,
        next_step: str | None = None,
        next_activity_id: UUID | None = None,
        booked: bool = False,
        imported: bool = False,
        **_: Any,
    ) -> None:
        self.customer_id = customer_id
        self.owner = owner
        self.type = type
        self.channel = channel
        self.subject = subject
        self.agenda = agenda
        self.registered = held_at is not None
        self.booked = booked
        self.imported = imported
        # A registered activity has no plan: it happened at one moment, `held_at`.
        moment = held_at if held_at is not None else starts_at
        assert moment is not None
        self.starts_at: datetime = starts_at if starts_at is not None else moment
        self.ends_at: datetime = ends_at if ends_at is not None else moment
        self.status = COMPLETED if self.registered else PLANNED
        self.note = note
        self.next_step = next_step
        self.completed_at = held_at  # when it was held
        self.next_activity_id = next_activity_id
        self.attachments: list[dict[str, Any]] = []

    # -- creation -------------------------------------------------------------------------

    @classmethod
    def plan(
        cls, activity_id: UUID, request: PlanRequest, *, actor: str, now: datetime
    ) -> Activity:
        subject = require_subject(request.subject)
        require_span(request.starts_at, request.ends_at)
        require_future(request.starts_at, now, "R5", "planning an activity")
        require_visit_is_physical(request.type, request.channel)
        return cls._create(
            cls.Planned,
            id=activity_id,
            timestamp=now,
            customer_id=request.customer_id,
            owner=request.owner,
            type=request.type.value,
            channel=request.channel.value,
            subject=subject,
            starts_at=request.starts_at,
            ends_at=request.ends_at,
            agenda=(request.agenda or None),
            actor=actor,
        )

    @classmethod
    def register(
        cls,
        activity_id: UUID,
        request: RegistrationRequest,
        *,
        profile: DiscoveryProfile | None,
        next_activity_id: UUID | None,
        actor: str,
        now: datetime,
    ) -> Activity:
        require_held(request.held_at, now)
        require_booking_decides_type(request.type, request.channel, request.booked)
        note = require_valuable_note(request.type, request.channel, request.note)
        require_proposal(request.type, request.proposal_attached)
        require_discovery_profile(request.type, profile)
        return cls._create(
            cls.Registered,
            id=activity_id,
            timestamp=now,
            customer_id=request.customer_id,
            owner=request.owner,
            type=request.type.value,
            channel=request.channel.value,
            subject=request.subject or None,
            held_at=request.held_at,
            note=note,
            next_step=(request.next_step or None),
            discovery_profile=profile.as_dict() if profile else None,
            next_activity_id=next_activity_id,
            actor=actor,
            booked=request.booked,
        )

    @classmethod
    def import_held(cls, request: ImportedActivity, *, actor: str, now: datetime) -> Activity:
        """An activity of the previous system's history (see `ImportedActivity`)."""
        require_held(request.held_at, now)
        require_visit_is_physical(request.type, request.channel)
        note = request.note.strip()
        if not note:
            raise DomainError("note", "an imported activity keeps its note", field="note")
        return cls._create(
            cls.Registered,
            id=request.activity_id,
            timestamp=now,
            customer_id=request.customer_id,
            owner=request.owner,
            type=request.type.value,
            channel=request.channel.value,
            subject=request.subject or None,
            held_at=request.held_at,
            note=note,
            next_step=None,
            discovery_profile=None,
            next_activity_id=None,
            actor=actor,
            imported=True,
        )

    # -- commands -------------------------------------------------------------------------

    def move(
        self,
        *,
        starts_at: datetime,
        ends_at: datetime | None,
        reason: MoveReason,
        note: str | None,
        actor: str,
        now: datetime,
    ) -> None:
        self._require_planned("moved")
        reason = require_move_reason(reason)
        end = ends_at if ends_at is not None else starts_at + self.duration
        require_span(starts_at, end)
        require_future(starts_at, now, "R1", "moving an activity")
        require_new_time((self.starts_at, self.ends_at), (starts_at, end))
        self.trigger_event(
            self.Moved,
            timestamp=now,
            starts_at=starts_at,
            ends_at=end,
            reason=reason.value,
            note=note or None,
            actor=actor,
        )

    def retype(
        self,
        *,
        type_: ActivityType,
        channel: Channel | None,
        reason: str | None,
        actor: str,
        now: datetime,
    ) -> None:
        self._require_planned("retyped")
        new_channel = channel or Channel(self.channel)
        require_changed_form((ActivityType(self.type), Channel(self.channel)), (type_, new_channel))
        require_visit_is_physical(type_, new_channel)
        self.trigger_event(
            self.Retyped,
            timestamp=now,
            type=type_.value,
            channel=new_channel.value,
            reason=reason or None,
            actor=actor,
        )

    def edit(self, *, subject: str, agenda: str | None, actor: str, now: datetime) -> None:
        """A planned activity's subject (R5: it says what the activity is about) or agenda."""
        self._require_planned("edited")
        subject, agenda = require_subject(subject), (agenda or "").strip() or None
        if (subject, agenda) == (self.subject, self.agenda):
            raise DomainError(
                "unchanged", "the edit changes neither subject nor agenda", field="subject"
            )
        self.trigger_event(self.Edited, timestamp=now, subject=subject, agenda=agenda, actor=actor)

    def reassign(self, *, owner: str, actor: str, now: datetime, reason: str | None = None) -> None:
        self._require_planned("reassigned")
        if owner == self.owner:
            raise DomainError("owner", f"the activity is already owned by {owner}", field="owner")
        self.trigger_event(
            self.Reassigned, timestamp=now, owner=owner, actor=actor, reason=reason or None
        )

    def add_attachment(
        self,
        *,
        attachment_id: UUID,
        kind: AttachmentKind,
        filename: str,
        media_type: str,
        size: int,
        sha256: str,
        uri: str,
        actor: str,
        now: datetime,
    ) -> None:
        if self.status == CANCELLED:
            raise DomainError(
                "invalid_transition", "a cancelled activity takes no attachments", kind="conflict"
            )
        self.trigger_event(
            self.AttachmentAdded,
            timestamp=now,
            attachment_id=attachment_id,
            kind=kind.value,
            filename=filename,
            media_type=media_type,
            size=size,
            sha256=sha256,
            uri=uri,
            actor=actor,
        )

    def complete(
        self,
        completion: CompletionRequest,
        *,
        profile: DiscoveryProfile | None,
        next_activity_id: UUID | None,
        actor: str,
        now: datetime,
    ) -> None:
        self._require_planned("completed")
        note, next_step = require_outcome(completion.note, completion.next_step)
        held_at = completion.held_at or now
        require_held(held_at, now, planned_at=self.created_on)
        type_, channel = ActivityType(self.type), Channel(self.channel)
        require_answered(type_, channel, note)
        require_proposal(type_, self.has_proposal)
        require_discovery_profile(type_, profile)
        self.trigger_event(
            self.Completed,
            timestamp=now,
            note=note,
            next_step=next_step,
            discovery_profile=profile.as_dict() if profile else None,
            next_activity_id=next_activity_id,
            actor=actor,
            held_at=held_at,
        )

    def cancel(
        self, *, reason: str, next_activity_id: UUID | None, actor: str, now: datetime
    ) -> None:
        self._require_planned("cancelled")
        if not reason.strip():
            raise DomainError("reason", "a cancellation gives its reason", field="reason")
        self.trigger_event(
            self.Cancelled,
            timestamp=now,
            reason=reason.strip(),
            next_activity_id=next_activity_id,
            actor=actor,
        )

    # -- queries --------------------------------------------------------------------------

    @property
    def duration(self) -> timedelta:
        return self.ends_at - self.starts_at

    @property
    def has_proposal(self) -> bool:
        return any(a["kind"] == AttachmentKind.PROPOSAL for a in self.attachments)

    def is_future(self, now: datetime) -> bool:
        return self.status == PLANNED and self.starts_at > now

    def _require_planned(self, action: str) -> None:
        if self.status != PLANNED:
            raise DomainError(
                "invalid_transition",
                f"a {self.status} activity cannot be {action}",
                kind="conflict",
                details={"status": self.status},
            )


class CustomerFile(Aggregate):
    """What the activity service knows per customer: the open activities, the discovery
    profile with its history, and whether R8 has a gap open. Saved together with the activity
    a command changes, so R8 ("a prioritised customer always has a future activity") cannot
    be broken by a race, and a gap closes in the same save as the plan that closes it.
    """

    class Opened(Aggregate.Created):
        customer_id: str

    class ActivityScheduled(Aggregate.Event):
        activity_id: UUID
        starts_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.open_activities[self.activity_id] = self.starts_at

    class ActivityClosed(Aggregate.Event):
        activity_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.open_activities.pop(self.activity_id, None)

    class DiscoveryProfileRecorded(Aggregate.Event):
        profile: dict[str, str]
        activity_id: UUID
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.discovery_profile = dict(self.profile)

    class GapOpened(Aggregate.Event):
        customer_id: str
        since: datetime
        why: str
        segment: str
        owner: str | None
        activity_id: UUID | None
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.gap_since, aggregate.gap_why = self.since, self.why

    class GapClosed(Aggregate.Event):
        customer_id: str
        since: datetime
        why: str
        activity_id: UUID | None
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.gap_since, aggregate.gap_why = None, None

    @staticmethod
    def id_for(customer_id: str) -> UUID:
        return uuid.uuid5(_NAMESPACE, f"customer-file:{customer_id}")

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.open_activities: dict[UUID, datetime] = {}
        self.discovery_profile: dict[str, str] | None = None
        self.gap_since: datetime | None = None
        self.gap_why: str | None = None

    @classmethod
    def open(cls, customer_id: str, now: datetime) -> CustomerFile:
        return cls._create(
            cls.Opened, id=cls.id_for(customer_id), timestamp=now, customer_id=customer_id
        )

    def schedule(self, activity_id: UUID, starts_at: datetime, now: datetime) -> None:
        if self.open_activities.get(activity_id) != starts_at:
            self.trigger_event(
                self.ActivityScheduled, timestamp=now, activity_id=activity_id, starts_at=starts_at
            )

    def close(self, activity_id: UUID, now: datetime) -> None:
        if activity_id in self.open_activities:
            self.trigger_event(self.ActivityClosed, timestamp=now, activity_id=activity_id)

    def record_profile(
        self, profile: DiscoveryProfile, activity_id: UUID, actor: str, now: datetime
    ) -> None:
        self.trigger_event(
            self.DiscoveryProfileRecorded,
            timestamp=now,
            profile=profile.as_dict(),
            activity_id=activity_id,
            actor=actor,
        )

    def future_activities(self, now: datetime, *, besides: UUID | None = None) -> list[UUID]:
        return [a for a, starts in self.open_activities.items() if starts > now and a != besides]

    def watch(self, customer: CustomerEntry | None, now: datetime, actor: str) -> None:
        """R8 over time: open a gap the moment a prioritized customer has no future activity
        (its last one overdue, or it became prioritized), close it when one is planned or R8
        no longer applies. Commands call it after changing the file; so does the watcher as
        the clock and the registry move."""
        future = sorted(self.future_activities(now), key=self.open_activities.__getitem__)
        if lacks_future_activity(customer, bool(future)):
            assert customer is not None
            if self.gap_since is None:
                self._open_gap(customer, now, actor)
        elif self.gap_since is not None:
            if future:
                why, activity_id = GapClosedBecause.PLANNED, future[0]
            elif customer is None:
                why, activity_id = GapClosedBecause.CUSTOMER_REMOVED, None
            else:
                why, activity_id = GapClosedBecause.NO_LONGER_PRIORITIZED, None
            self.trigger_event(
                self.GapClosed,
                timestamp=now,
                customer_id=self.customer_id,
                since=self.gap_since,
                why=why.value,
                activity_id=activity_id,
                actor=actor,
            )

    def _open_gap(self, customer: CustomerEntry, now: datetime, actor: str) -> None:
        overdue = max(self.open_activities.items(), key=lambda item: item[1], default=None)
        if overdue is not None:
            # The gap began when the last planned activity's time passed unheld.
            activity_id, since, why = overdue[0], overdue[1], GapOpenedBecause.OVERDUE
        else:
            activity_id, since, why = None, now, GapOpenedBecause.BECAME_PRIORITIZED
        self.trigger_event(
            self.GapOpened,
            timestamp=now,
            customer_id=self.customer_id,
            since=since,
            why=why.value,
            segment=customer.segment,
            owner=customer.owner,
            activity_id=activity_id,
            actor=actor,
        )
