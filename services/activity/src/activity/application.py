"""The activity service's eventsourcing Application: commands, queries, the one transaction.

Every command loads what it needs, asks the aggregates (which enforce the rules), checks
who may do it, and saves everything it changed in one `save`: the activity, a follow-up
activity, the customer's file and an idempotency record commit together or not at all.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from crm_contracts.enums import ActivityType, Channel, MoveReason
from crm_platform.actors import Actor, Clock, system_clock
from crm_platform.errors import CommandRefused as CommandRefused
from crm_platform.errors import DomainError
from crm_platform.errors import Forbidden as Forbidden
from crm_platform.errors import LostRace as LostRace
from crm_platform.errors import NotFound as NotFound
from crm_platform.errors import StaleVersion as StaleVersion
from crm_platform.eventsourcing_internals import NotifiesSaves, get_many
from crm_platform.idempotency import (
    IdempotencyKey,
    first_outcome,
    idempotent,
    keyed,
    require_version,
    retries_lost_races,
)
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from activity.domain import (
    PLANNED,
    Activity,
    AttachmentRequest,
    CompletionRequest,
    CustomerFile,
    ImportedActivity,
    PlanRequest,
    RegistrationRequest,
)
from activity.rules import (
    CustomerEntry,
    DiscoveryProfile,
    require_future_activity,
    require_same_customer,
)

# The reason a reassignment gives when it follows the customer's new consultant (Danish: it
# shows in the activity's history as consultants read it).
OWNER_CHANGED = "Kunden har fået ny ansvarlig konsulent"


class CustomerDirectory(Protocol):
    def get(self, customer_id: str) -> CustomerEntry | None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command produced; `replayed` when an Idempotency-Key repeated an earlier one."""

    activity: Activity
    status: int
    replayed: bool = False
    # Where the command's save ends in the notification log (for a replay: the log's end
    # now); a read that waits for its read model to reach it sees the command's effect.
    position: int | None = None


# About 200 bytes each: a few MB at most.
REMEMBERED_CUSTOMERS = 20_000


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
        # activity id → its customer id, which never changes: lets a command load the
        # activity and its customer's file in one read (`_for_change_in_file`).
        self._customers: dict[UUID, str] = {}
        self._customers_lock = threading.Lock()

    # -- planning -------------------------------------------------------------------------

    @idempotent
    @retries_lost_races
    def plan(
        self, actor: Actor, request: PlanRequest, *, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        now = self.clock()
        self._require_owner_or_manager(actor, request.owner, "plan")
        customer = self._known_customer(request.customer_id)
        activity = self._new_activity(actor, request, now)
        file = self._customer_file(customer.customer_id, now)
        file.schedule(activity.id, activity.starts_at, now)
        file.watch(customer, now, actor.user_id)
        return self._save(activity, [file], idempotency, 201)

    @idempotent
    @retries_lost_races
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
        profile = _profile(request.discovery_profile)
        follow_up = self._follow_up(actor, request.next_activity, customer.customer_id, now)
        activity = Activity.register(
            uuid.uuid4(),
            request,
            profile=profile,
            next_activity_id=follow_up.id if follow_up else None,
            actor=actor.user_id,
            now=now,
        )
        for attachment in request.attachments:
            self._attach(activity, actor, attachment, now)
        file = self._customer_file(customer.customer_id, now)
        others = self._filed(file, customer, follow_up, profile, activity, actor, now)
        return self._save(activity, others, idempotency, 201)

    # -- changing a planned activity ------------------------------------------------------

    @idempotent
    @retries_lost_races
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
        activity, file = self._for_change_in_file(actor, activity_id, expected_version, now)
        activity.move(
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            note=note,
            actor=actor.user_id,
            now=now,
        )
        file.schedule(activity.id, activity.starts_at, now)
        if file.gap_since is not None:
            # A move goes to the future, so it can close a gap (an overdue activity moved
            # ahead) but never open one: the directory is asked only when one is open.
            file.watch(self.directory.get(activity.customer_id), now, actor.user_id)
        return self._save(activity, [file], idempotency)

    @idempotent
    @retries_lost_races
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
    @retries_lost_races
    def edit(
        self,
        actor: Actor,
        activity_id: UUID,
        *,
        subject: str | None = None,
        agenda: str | None = None,
        keep_agenda: bool = True,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        """A new subject, agenda or both (`keep_agenda=False` replaces the agenda, None clears)."""
        activity = self._for_change(actor, activity_id, expected_version)
        activity.edit(
            subject=subject if subject is not None else (activity.subject or ""),
            agenda=activity.agenda if keep_agenda else agenda,
            actor=actor.user_id,
            now=self.clock(),
        )
        return self._save(activity, [], idempotency)

    @idempotent
    @retries_lost_races
    def reassign(
        self,
        actor: Actor,
        activity_id: UUID,
        *,
        owner: str,
        reason: str | None = None,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        if not (actor.is_manager or actor.is_service):
            raise Forbidden("only a sales manager may reassign an activity")
        activity = self._for_change(actor, activity_id, expected_version)
        activity.reassign(owner=owner, actor=actor.user_id, now=self.clock(), reason=reason)
        return self._save(activity, [], idempotency)

    def follow_owner(self, customer_id: str, old: str, new: str, actor: Actor) -> int:
        """The customer got a new consultant: its open activities that the old one owned move
        to the new one, all in one save, each a reassignment by `actor` with the reason. The
        ones a manager gave to someone else stay theirs. How many moved."""
        if not actor.is_service:
            raise Forbidden("only the service follows the registry's owner changes")
        now = self.clock()
        file = self._customer_file(customer_id, now)
        moving = [
            a
            for a in (self.activity(i) for i in file.open_activities)
            if a.status == PLANNED and a.owner == old
        ]
        for activity in moving:
            activity.reassign(owner=new, actor=actor.user_id, now=now, reason=OWNER_CHANGED)
        if moving:
            self.save(*moving)
        return len(moving)

    @idempotent
    @retries_lost_races
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
        return self._save(activity, [], idempotency, 201)

    @idempotent
    @retries_lost_races
    def complete(
        self,
        actor: Actor,
        activity_id: UUID,
        completion: CompletionRequest,
        *,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        now = self.clock()
        activity, file = self._for_change_in_file(actor, activity_id, expected_version, now)
        profile = _profile(completion.discovery_profile)
        for attachment in completion.attachments:
            self._attach(activity, actor, attachment, now)
        follow_up = self._follow_up(actor, completion.next_activity, activity.customer_id, now)
        activity.complete(
            completion,
            profile=profile,
            next_activity_id=follow_up.id if follow_up else None,
            actor=actor.user_id,
            now=now,
        )
        return self._close(activity, file, follow_up, profile, actor, now, "completed", idempotency)

    @idempotent
    @retries_lost_races
    def cancel(
        self,
        actor: Actor,
        activity_id: UUID,
        *,
        reason: str,
        next_activity: PlanRequest | None = None,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        now = self.clock()
        activity, file = self._for_change_in_file(actor, activity_id, expected_version, now)
        follow_up = self._follow_up(actor, next_activity, activity.customer_id, now)
        activity.cancel(
            reason=reason,
            next_activity_id=follow_up.id if follow_up else None,
            actor=actor.user_id,
            now=now,
        )
        return self._close(activity, file, follow_up, None, actor, now, "cancelled", idempotency)

    # -- going live -----------------------------------------------------------------------

    def import_history(
        self, actor: Actor, items: Sequence[ImportedActivity]
    ) -> tuple[int, int, dict[str, str]]:
        """Past activities from the previous CRM, in one save when none was imported before.

        Returns (imported, imported before, refused: external id → why). An item is refused
        for an unknown customer or a record the domain cannot keep; the others are saved.
        Importing the same items again finds them (their ids derive from `external_id`)."""
        if not (actor.is_manager or actor.is_service):
            raise Forbidden("only a sales manager may import activities")
        now = self.clock()
        refused: dict[str, str] = {}
        # A history has many rows per customer: ask the directory once per customer.
        known = {c: self.directory.get(c) is not None for c in {i.customer_id for i in items}}
        accepted: list[tuple[ImportedActivity, Activity]] = []
        for item in items:
            if not known[item.customer_id]:
                refused[item.external_id] = f"customer {item.customer_id} is not in the registry"
                continue
            try:
                accepted.append((item, Activity.import_held(item, actor=actor.user_id, now=now)))
            except DomainError as error:
                refused[item.external_id] = error.message
        try:
            self.save(*(activity for _, activity in accepted))
            return len(accepted), 0, refused
        except IntegrityError:
            pass  # some were imported before (a second run of the file): one at a time
        imported = before = 0
        for item, _ in accepted:
            try:
                # Made again: the failed save collected the first one's events.
                self.save(Activity.import_held(item, actor=actor.user_id, now=now))
                imported += 1
            except IntegrityError:
                before += 1
        return imported, before, refused

    # -- R8 as time and the registry move ----------------------------------------------

    def watch_future_activity(self, customer_id: str, actor: Actor) -> bool:
        """Open or close the customer's R8 gap as the clock and the registry have it now (an
        overdue last activity, a customer that became prioritized or stopped being so).
        True when it changed; a lost race is left for the next look."""
        now = self.clock()
        file = self._customer_file(customer_id, now)
        file.watch(self.directory.get(customer_id), now, actor.user_id)
        if not any(
            isinstance(e, CustomerFile.GapOpened | CustomerFile.GapClosed)
            for e in file.pending_events
        ):
            return False
        try:
            self.save(file)
        except IntegrityError:
            return False  # a command saved the file meanwhile, and watched it itself
        return True

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
        self._remember_customer(found)
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

    def _follow_up(
        self, actor: Actor, request: PlanRequest | None, customer_id: str, now: datetime
    ) -> Activity | None:
        """The next activity planned in the same save (R7)."""
        if request is None:
            return None
        require_same_customer(request.customer_id, customer_id)
        return self._new_activity(actor, request, now)

    def _new_activity(self, actor: Actor, request: PlanRequest, now: datetime) -> Activity:
        self._require_owner_or_manager(actor, request.owner, "plan")
        return Activity.plan(uuid.uuid4(), request, actor=actor.user_id, now=now)

    def _close(
        self,
        activity: Activity,
        file: CustomerFile,
        follow_up: Activity | None,
        profile: DiscoveryProfile | None,
        actor: Actor,
        now: datetime,
        action: str,
        idempotency: IdempotencyKey | None,
    ) -> Outcome:
        """Save a completed or cancelled activity with its customer's file, keeping R8."""
        customer = self.directory.get(activity.customer_id)
        require_future_activity(
            customer,
            follow_up is not None or bool(file.future_activities(now, besides=activity.id)),
            action,
        )
        file.close(activity.id, now)
        others = self._filed(file, customer, follow_up, profile, activity, actor, now)
        return self._save(activity, others, idempotency)

    @staticmethod
    def _filed(
        file: CustomerFile,
        customer: CustomerEntry | None,
        follow_up: Activity | None,
        profile: DiscoveryProfile | None,
        activity: Activity,
        actor: Actor,
        now: datetime,
    ) -> list[Aggregate]:
        """The customer's file (and the follow-up) as a command leaves them."""
        others: list[Aggregate] = [file]
        if follow_up:
            file.schedule(follow_up.id, follow_up.starts_at, now)
            others.append(follow_up)
        if profile:
            file.record_profile(profile, activity.id, actor.user_id, now)
        file.watch(customer, now, actor.user_id)
        return others

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

    def _for_change_in_file(
        self, actor: Actor, activity_id: UUID, expected_version: int | None, now: datetime
    ) -> tuple[Activity, CustomerFile]:
        """The activity a command changes, with its customer's file: from one read when this
        process knows the activity's customer (it never changes), else one after the other."""
        customer_id = self._customers.get(activity_id)
        if customer_id is None:
            activity = self._for_change(actor, activity_id, expected_version)
            return activity, self._customer_file(activity.customer_id, now)
        file_id = CustomerFile.id_for(customer_id)
        loaded = get_many(self, [activity_id, file_id])
        activity = loaded.get(activity_id)
        if not isinstance(activity, Activity):
            raise NotFound(f"no activity {activity_id}")
        file = loaded.get(file_id)
        self._check_change(actor, activity, expected_version)
        if not isinstance(file, CustomerFile):
            file = CustomerFile.open(customer_id, now)
        return activity, file

    def _remember_customer(self, activity: Activity) -> None:
        with self._customers_lock:
            if len(self._customers) >= REMEMBERED_CUSTOMERS:
                del self._customers[next(iter(self._customers))]
            self._customers[activity.id] = activity.customer_id

    def _for_change(
        self, actor: Actor, activity_id: UUID, expected_version: int | None
    ) -> Activity:
        activity = self.activity(activity_id)
        self._check_change(actor, activity, expected_version)
        return activity

    def _check_change(self, actor: Actor, activity: Activity, expected_version: int | None) -> None:
        if not actor.may_act_for(activity.owner):
            raise Forbidden("only the activity's owner or a sales manager may change it")
        require_version(activity, expected_version, "activity")

    def _require_owner_or_manager(self, actor: Actor, owner: str, action: str) -> None:
        if not actor.may_act_for(owner):
            raise Forbidden(f"a consultant may only {action} for themselves")

    def _replay(self, key: IdempotencyKey | None) -> Outcome | None:
        first = first_outcome(self.repository, key)
        if first is None:
            return None
        return Outcome(first[0], first[1], True, self.recorder.max_notification_id())

    def _save(
        self,
        activity: Activity,
        others: Sequence[Aggregate],
        idempotency: IdempotencyKey | None,
        status: int = 200,
    ) -> Outcome:
        items = keyed([activity, *others], idempotency, activity, status, self.clock())
        try:
            recordings = self.save(*items)
        except IntegrityError:
            # Under a key, `_idempotent` first looks for an earlier outcome of that key.
            raise LostRace(
                "the activity or its customer changed while this command ran; "
                "read it again and retry",
                retry=True,
            ) from None
        for item in items:
            if isinstance(item, Activity):
                self._remember_customer(item)
        return Outcome(activity, status, position=max(r.notification.id for r in recordings))


def _profile(data: dict[str, Any] | None) -> DiscoveryProfile | None:
    return DiscoveryProfile.from_mapping(data) if data else None
