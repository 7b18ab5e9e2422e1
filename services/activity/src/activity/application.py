"""The activity service's eventsourcing Application: commands, queries, the one transaction.

Every command loads what it needs, asks the aggregates (which enforce the rules), checks
who may do it, and saves everything it changed in one `save`: the activity, a follow-up
activity, the customer's file and an idempotency record commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason, Segment
from crm_platform.actors import Actor, Clock, system_clock
from crm_platform.errors import CommandRefused as CommandRefused
from crm_platform.errors import DomainError
from crm_platform.errors import Forbidden as Forbidden
from crm_platform.errors import LostRace as LostRace
from crm_platform.errors import NotFound as NotFound
from crm_platform.errors import StaleVersion as StaleVersion
from crm_platform.eventsourcing_internals import NotifiesSaves
from crm_platform.idempotency import (
    IdempotencyKey,
    first_outcome,
    idempotent,
    keyed,
    require_version,
)
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from activity.domain import Activity, CustomerFile
from activity.rules import DiscoveryProfile


@dataclass(frozen=True, slots=True)
class CustomerEntry:
    customer_id: str
    name: str
    segment: str
    prioritized: bool


class CustomerDirectory(Protocol):
    def get(self, customer_id: str) -> CustomerEntry | None: ...


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
class RegistrationRequest:
    """An activity held without being planned, registered after the fact (R3, R4)."""

    customer_id: str
    owner: str
    type: ActivityType
    channel: Channel
    occurred_at: datetime
    note: str
    subject: str | None = None
    next_step: str | None = None
    discovery_profile: dict[str, Any] | None = None
    next_activity: PlanRequest | None = None
    attachments: Sequence[AttachmentRequest] = ()


@dataclass(frozen=True, slots=True)
class AttachmentRequest:
    kind: AttachmentKind
    filename: str
    media_type: str
    size: int
    sha256: str
    uri: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command produced; `replayed` when an Idempotency-Key repeated an earlier one."""

    activity: Activity
    status: int
    replayed: bool = False


class ActivityApplication(NotifiesSaves[UUID]):
    name = "activity"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        directory: CustomerDirectory,
        clock: Clock = system_clock,
        on_saved: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(env)
        # eventsourcing's aggregate cache (AGGREGATE_CACHE_MAXSIZE) is off by default; it
        # measured no gain on the command path. Should it be turned on, other API processes
        # save too: fast-forward makes each `get` read the events saved after the cached
        # version, and deep copies keep a refused command's changes out of the cache.
        if self.repository.cache is not None and not (
            self.repository.fastforward and self.repository.deepcopy_from_cache
        ):
            raise ValueError(
                "the aggregate cache needs AGGREGATE_CACHE_FASTFORWARD and "
                "DEEPCOPY_FROM_AGGREGATE_CACHE: other processes save too, and a refused "
                "command must not change the cached aggregate"
            )
        self.directory = directory
        self.clock = clock
        self.on_saved = on_saved

    # -- planning -------------------------------------------------------------------------

    @idempotent
    def plan(
        self, actor: Actor, request: PlanRequest, *, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        now = self.clock()
        self._require_owner_or_manager(actor, request.owner, "plan")
        customer = self._known_customer(request.customer_id)
        activity = self._new_activity(actor, request, customer.customer_id, now)
        file = self._customer_file(customer.customer_id, now)
        file.schedule(activity.id, activity.starts_at, now)
        return self._save(activity, [file], idempotency, status=201)

    @idempotent
    def register(
        self,
        actor: Actor,
        request: RegistrationRequest,
        *,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        now = self.clock()
        self._require_owner_or_manager(actor, request.owner, "register activities")
        customer = self._known_customer(request.customer_id)
        profile = (
            DiscoveryProfile.from_mapping(request.discovery_profile)
            if request.discovery_profile
            else None
        )
        file = self._customer_file(customer.customer_id, now)
        follow_up = (
            self._new_activity(actor, request.next_activity, customer.customer_id, now)
            if request.next_activity
            else None
        )
        attachments = request.attachments
        activity = Activity.register(
            activity_id=uuid.uuid4(),
            customer_id=customer.customer_id,
            owner=request.owner,
            type_=request.type,
            channel=request.channel,
            held_at=request.occurred_at,
            subject=request.subject,
            note=request.note,
            next_step=request.next_step,
            discovery_profile=profile,
            next_activity_id=follow_up.id if follow_up else None,
            actor=actor.user_id,
            now=now,
            proposal_attached=any(a.kind == AttachmentKind.PROPOSAL for a in attachments),
        )
        for attachment in attachments:
            self._attach(activity, actor, attachment, now)
        others: list[Aggregate] = [file]
        if follow_up:
            file.schedule(follow_up.id, follow_up.starts_at, now)
            others.append(follow_up)
        if profile:
            file.record_profile(profile, activity.id, actor.user_id, now)
        return self._save(activity, others, idempotency, status=201)

    # -- changing a planned activity ------------------------------------------------------

    @idempotent
    def move(
        self,
        actor: Actor,
        activity_id: UUID,
        *,
        starts_at: datetime,
        ends_at: datetime | None,
        reason: MoveReason,
        note: str | None,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        now = self.clock()
        activity = self._for_change(actor, activity_id, expected_version)
        activity.move(
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            note=note,
            actor=actor.user_id,
            now=now,
        )
        file = self._customer_file(activity.customer_id, now)
        file.schedule(activity.id, activity.starts_at, now)
        return self._save(activity, [file], idempotency)

    @idempotent
    def retype(
        self,
        actor: Actor,
        activity_id: UUID,
        *,
        type_: ActivityType,
        channel: Channel | None,
        reason: str | None,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        activity = self._for_change(actor, activity_id, expected_version)
        activity.retype(
            type_=type_, channel=channel, reason=reason, actor=actor.user_id, now=self.clock()
        )
        return self._save(activity, [], idempotency)

    @idempotent
    def reassign(
        self,
        actor: Actor,
        activity_id: UUID,
        *,
        owner: str,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        if not (actor.is_manager or actor.is_service):
            raise Forbidden("only a sales manager may reassign an activity")
        activity = self._for_change(actor, activity_id, expected_version)
        activity.reassign(owner=owner, actor=actor.user_id, now=self.clock())
        return self._save(activity, [], idempotency)

    @idempotent
    def add_attachment(
        self,
        actor: Actor,
        activity_id: UUID,
        attachment: AttachmentRequest,
        *,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        activity = self._for_change(actor, activity_id, expected_version)
        self._attach(activity, actor, attachment, self.clock())
        return self._save(activity, [], idempotency, status=201)

    @idempotent
    def complete(
        self,
        actor: Actor,
        activity_id: UUID,
        *,
        note: str,
        next_step: str,
        attachments: Sequence[AttachmentRequest] = (),
        discovery_profile: dict[str, Any] | None = None,
        next_activity: PlanRequest | None = None,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        now = self.clock()
        activity = self._for_change(actor, activity_id, expected_version)
        profile = DiscoveryProfile.from_mapping(discovery_profile) if discovery_profile else None
        for attachment in attachments:
            self._attach(activity, actor, attachment, now)
        follow_up = (
            self._new_activity(actor, next_activity, activity.customer_id, now)
            if next_activity
            else None
        )
        activity.complete(
            note=note,
            next_step=next_step,
            discovery_profile=profile,
            next_activity_id=follow_up.id if follow_up else None,
            actor=actor.user_id,
            now=now,
        )
        file = self._customer_file(activity.customer_id, now)
        self._require_future_activity(file, activity, follow_up, now, "completed")
        file.close(activity.id, now)
        others: list[Aggregate] = [file]
        if follow_up:
            file.schedule(follow_up.id, follow_up.starts_at, now)
            others.append(follow_up)
        if profile:
            file.record_profile(profile, activity.id, actor.user_id, now)
        return self._save(activity, others, idempotency)

    @idempotent
    def cancel(
        self,
        actor: Actor,
        activity_id: UUID,
        *,
        reason: str,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        now = self.clock()
        activity = self._for_change(actor, activity_id, expected_version)
        activity.cancel(reason=reason, actor=actor.user_id, now=now)
        file = self._customer_file(activity.customer_id, now)
        self._require_future_activity(file, activity, None, now, "cancelled")
        file.close(activity.id, now)
        return self._save(activity, [file], idempotency)

    # -- queries --------------------------------------------------------------------------

    def activity(self, activity_id: UUID, *, as_of: datetime | None = None) -> Activity:
        found: object
        try:
            if as_of is None:
                found = self.repository.get(activity_id)
            else:
                version = self._version_at(activity_id, as_of)
                found = self.repository.get(activity_id, version=version)
        except AggregateNotFoundError:
            found = None
        if not isinstance(found, Activity):  # ids of customer files, idempotency records
            raise NotFound(
                f"no activity {activity_id}" + (f" as of {as_of.isoformat()}" if as_of else "")
            )
        return found

    def history(self, activity_id: UUID) -> list[Any]:
        events = list(self.events.get(activity_id))
        if not events or not isinstance(events[0], Activity.Planned | Activity.Registered):
            raise NotFound(f"no activity {activity_id}")
        return events

    def discovery_profile(
        self, customer_id: str, *, as_of: datetime | None = None
    ) -> tuple[dict[str, str], int, Any]:
        """The profile in force at `as_of` (now by default), its revision and the event."""
        recorded = [
            e
            for e in self.events.get(CustomerFile.id_for(customer_id))
            if isinstance(e, CustomerFile.DiscoveryProfileRecorded)
            and (as_of is None or e.timestamp <= as_of)
        ]
        if not recorded:
            raise NotFound(
                f"no discovery profile for customer {customer_id}"
                + (f" as of {as_of.isoformat()}" if as_of else "")
            )
        return dict(recorded[-1].profile), len(recorded), recorded[-1]

    # -- internals ------------------------------------------------------------------------

    def _version_at(self, activity_id: UUID, as_of: datetime) -> int:
        version = None
        for event in self.events.get(activity_id):
            if event.timestamp > as_of:  # type: ignore[attr-defined]
                break
            version = event.originator_version
        if version is None:
            raise AggregateNotFoundError(activity_id)
        return version

    def _new_activity(
        self, actor: Actor, request: PlanRequest, customer_id: str, now: datetime
    ) -> Activity:
        if request.customer_id != customer_id:
            raise DomainError(
                "R7",
                f"R7: the next activity is planned on the same customer ({customer_id})",
                details={"field": "next_activity.customer_id"},
            )
        self._require_owner_or_manager(actor, request.owner, "plan")
        return Activity.plan(
            activity_id=uuid.uuid4(),
            customer_id=customer_id,
            owner=request.owner,
            type_=request.type,
            channel=request.channel,
            subject=request.subject,
            starts_at=request.starts_at,
            ends_at=request.ends_at,
            agenda=request.agenda,
            actor=actor.user_id,
            now=now,
        )

    def _attach(
        self, activity: Activity, actor: Actor, attachment: AttachmentRequest, now: datetime
    ) -> None:
        activity.add_attachment(
            attachment_id=uuid.uuid4(),
            kind=attachment.kind,
            filename=attachment.filename,
            media_type=attachment.media_type,
            size=attachment.size,
            sha256=attachment.sha256,
            uri=attachment.uri,
            actor=actor.user_id,
            now=now,
        )

    def _require_future_activity(
        self,
        file: CustomerFile,
        activity: Activity,
        follow_up: Activity | None,
        now: datetime,
        action: str,
    ) -> None:
        """R8: a prioritized customer is never left without a future activity."""
        if follow_up is not None or file.future_activities(now, besides=activity.id):
            return
        customer = self.directory.get(activity.customer_id)
        if customer is not None and customer.prioritized:
            raise DomainError(
                "R8",
                f"R8: {customer.name} ({customer.customer_id}) is a prioritized customer "
                f"(segment {_segment_label(customer.segment)}) and must always have a future "
                f"activity; this "
                f"activity cannot be {action} without planning the next one (next_activity)",
                kind="conflict",
                details={
                    "customer_id": customer.customer_id,
                    "customer_name": customer.name,
                    "segment": customer.segment,
                },
            )

    def _known_customer(self, customer_id: str) -> CustomerEntry:
        customer = self.directory.get(customer_id)
        if customer is None:
            raise DomainError(
                "unknown_customer",
                f"customer {customer_id} is not in the customer registry",
                details={"field": "customer_id"},
            )
        return customer

    def _customer_file(self, customer_id: str, now: datetime) -> CustomerFile:
        try:
            return self.repository.get(CustomerFile.id_for(customer_id))
        except AggregateNotFoundError:
            return CustomerFile.open(customer_id, now)

    def _for_change(
        self, actor: Actor, activity_id: UUID, expected_version: int | None
    ) -> Activity:
        activity = self.activity(activity_id)
        if not actor.may_act_for(activity.owner):
            raise Forbidden("only the activity's owner or a sales manager may change it")
        require_version(activity, expected_version, "activity")
        return activity

    def _require_owner_or_manager(self, actor: Actor, owner: str, action: str) -> None:
        if not actor.may_act_for(owner):
            raise Forbidden(f"a consultant may only {action} for themselves")

    def _replay(self, key: IdempotencyKey | None) -> Outcome | None:
        first = first_outcome(self.repository, key)
        return Outcome(first[0], first[1], replayed=True) if first else None

    def _save(
        self,
        activity: Activity,
        others: Sequence[Aggregate],
        idempotency: IdempotencyKey | None,
        *,
        status: int = 200,
    ) -> Outcome:
        items = keyed([activity, *others], idempotency, activity, status, self.clock())
        try:
            self.save(*items)
        except IntegrityError:
            # Under a key, `_idempotent` first looks for an earlier outcome of that key.
            raise LostRace(
                "the activity or its customer changed while this command ran; "
                "read it again and retry",
                retry=True,
            ) from None
        return Outcome(activity, status)


def _segment_label(segment: str) -> str:
    """The Danish label consultants know the segment by; the raw value if it is a newer one."""
    try:
        return Segment(segment).label
    except ValueError:
        return segment
