"""Aggregates of the activity service: an `Activity`, and a `CustomerFile` per customer.

Commands validate against the rules first and only then trigger an event, so replaying the
stored events never re-checks a rule against a later "now". Events store plain values
(codes, UTC datetimes, strings) so the stored form does not depend on enum classes.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason
from eventsourcing.domain import Aggregate

from activity.rules import (
    DiscoveryProfile,
    DomainError,
    check_registration,
    require_future,
    require_span,
    require_text,
    require_visit_is_physical,
)

PLANNED, COMPLETED, CANCELLED = "planned", "completed", "cancelled"
_NAMESPACE = uuid.UUID("6f1d4c8e-29a4-4c53-9d0e-9a1b6c0f2e71")


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

        def apply(self, aggregate: Any) -> None:
            aggregate.owner = self.owner

    class Completed(Aggregate.Event):
        note: str
        next_step: str
        discovery_profile: dict[str, str] | None
        next_activity_id: UUID | None
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.status = COMPLETED
            aggregate.note, aggregate.next_step = self.note, self.next_step
            aggregate.completed_at = self.timestamp
            aggregate.next_activity_id = self.next_activity_id

    class Cancelled(Aggregate.Event):
        reason: str
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.status = CANCELLED

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
        **_: Any,
    ) -> None:
        self.customer_id = customer_id
        self.owner = owner
        self.type = type
        self.channel = channel
        self.subject = subject
        self.agenda = agenda
        self.registered = held_at is not None
        # A registered activity has no plan: it happened at one moment, `held_at`.
        moment = held_at if held_at is not None else starts_at
        assert moment is not None
        self.starts_at: datetime = starts_at if starts_at is not None else moment
        self.ends_at: datetime = ends_at if ends_at is not None else moment
        self.status = COMPLETED if self.registered else PLANNED
        self.note = note
        self.next_step = next_step
        self.completed_at = held_at
        self.next_activity_id = next_activity_id
        self.attachments: list[dict[str, Any]] = []

    # -- creation -------------------------------------------------------------------------

    @classmethod
    def plan(
        cls,
        *,
        activity_id: UUID,
        customer_id: str,
        owner: str,
        type_: ActivityType,
        channel: Channel,
        subject: str,
        starts_at: datetime,
        ends_at: datetime,
        agenda: str | None,
        actor: str,
        now: datetime,
    ) -> Activity:
        subject = require_text(subject, "R5", "a subject saying what the activity is about")
        require_span(starts_at, ends_at)
        require_future(starts_at, now, "starts_at", "planning an activity")
        require_visit_is_physical(type_, channel)
        return cls._create(
            cls.Planned,
            id=activity_id,
            timestamp=now,
            customer_id=customer_id,
            owner=owner,
            type=type_.value,
            channel=channel.value,
            subject=subject,
            starts_at=starts_at,
            ends_at=ends_at,
            agenda=(agenda or None),
            actor=actor,
        )

    @classmethod
    def register(
        cls,
        *,
        activity_id: UUID,
        customer_id: str,
        owner: str,
        type_: ActivityType,
        channel: Channel,
        held_at: datetime,
        subject: str | None,
        note: str,
        next_step: str | None,
        discovery_profile: DiscoveryProfile | None,
        next_activity_id: UUID | None,
        actor: str,
        now: datetime,
        proposal_attached: bool = False,
    ) -> Activity:
        note = require_text(note, "R4", "a note")
        if held_at > now:
            raise DomainError(
                "held_at",
                "a registration records what already happened: "
                "held_at must not be in the future (plan it instead)",
                details={"field": "occurred_at"},
            )
        check_registration(type_, channel, note)
        if type_ is ActivityType.PROPOSAL_MEETING and not proposal_attached:
            raise DomainError(
                "R9",
                "R9: a proposal meeting is registered only with its written, "
                "binding proposal attached (an attachment of kind 'proposal')",
            )
        if type_ is ActivityType.DISCOVERY_MEETING and discovery_profile is None:
            DiscoveryProfile.from_mapping({})  # raises R10 naming every missing field
        return cls._create(
            cls.Registered,
            id=activity_id,
            timestamp=now,
            customer_id=customer_id,
            owner=owner,
            type=type_.value,
            channel=channel.value,
            subject=subject or None,
            held_at=held_at,
            note=note,
            next_step=(next_step or None),
            discovery_profile=discovery_profile.as_dict() if discovery_profile else None,
            next_activity_id=next_activity_id,
            actor=actor,
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
        if reason not in set(MoveReason):
            raise DomainError(
                "R1",
                "R1: a move records its reason, one of " + ", ".join(r.value for r in MoveReason),
                details={"field": "reason"},
            )
        reason = MoveReason(reason)
        end = ends_at if ends_at is not None else starts_at + self.duration
        require_span(starts_at, end)
        require_future(starts_at, now, "R1", "moving an activity")
        if (starts_at, end) == (self.starts_at, self.ends_at):
            raise DomainError(
                "R1",
                "R1: a move needs a new time; this is the current one",
                details={"field": "starts_at"},
            )
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
        if (type_.value, new_channel.value) == (self.type, self.channel):
            raise DomainError(
                "R2",
                "R2: a retype needs another type or channel than the "
                f"current '{self.type}' / '{self.channel}'",
                details={"field": "type"},
            )
        require_visit_is_physical(type_, new_channel)
        self.trigger_event(
            self.Retyped,
            timestamp=now,
            type=type_.value,
            channel=new_channel.value,
            reason=reason or None,
            actor=actor,
        )

    def reassign(self, *, owner: str, actor: str, now: datetime) -> None:
        self._require_planned("reassigned")
        if owner == self.owner:
            raise DomainError(
                "owner", f"the activity is already owned by {owner}", details={"field": "owner"}
            )
        self.trigger_event(self.Reassigned, timestamp=now, owner=owner, actor=actor)

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
        *,
        note: str,
        next_step: str,
        discovery_profile: DiscoveryProfile | None,
        next_activity_id: UUID | None,
        actor: str,
        now: datetime,
    ) -> None:
        self._require_planned("completed")
        note = require_text(note, "R6", "a note with the most important information")
        next_step = require_text(next_step, "R6", "the next step")
        if self.type == ActivityType.PROPOSAL_MEETING and not self.has_proposal:
            raise DomainError(
                "R9",
                "R9: a proposal meeting is completed only with its written, "
                "binding proposal attached (an attachment of kind 'proposal')",
                kind="conflict",
            )
        if self.type == ActivityType.DISCOVERY_MEETING and discovery_profile is None:
            DiscoveryProfile.from_mapping({})  # raises R10 naming every missing field
        self.trigger_event(
            self.Completed,
            timestamp=now,
            note=note,
            next_step=next_step,
            discovery_profile=discovery_profile.as_dict() if discovery_profile else None,
            next_activity_id=next_activity_id,
            actor=actor,
        )

    def cancel(self, *, reason: str, actor: str, now: datetime) -> None:
        self._require_planned("cancelled")
        reason = require_text(reason, "reason", "a reason")
        self.trigger_event(self.Cancelled, timestamp=now, reason=reason, actor=actor)

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
    """What the activity service knows per customer: the open activities and the discovery
    profile with its history. Saved together with the activity a command changes, so R8
    ("a prioritised customer always has a future activity") cannot be broken by a race.
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

    @staticmethod
    def id_for(customer_id: str) -> UUID:
        return uuid.uuid5(_NAMESPACE, f"customer-file:{customer_id}")

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.open_activities: dict[UUID, datetime] = {}
        self.discovery_profile: dict[str, str] | None = None

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
