"""The customer aggregate of the segmentation service: `Customer`, its events,
`CUSTOMER_EVENTS` (those the relay publishes a snapshot after), and `segment_history` (the
segments a customer's events say it held, for the pro-rating of targets).

Commands validate first and only then trigger events, so replaying never re-checks a rule
against a later "now". A customer's segment is recomputed by every command that could change
it (`refresh`), and a `SegmentChanged` is recorded only when the segment really changes:
recomputing a customer to the segment it already has records nothing, which is what makes a
recomputation safe to re-run after a crash.

What puts a customer in `annual_agreement`: an annual agreement or a membership of the
customer value programme in force today (Europe/Copenhagen), whichever; it leaves the segment
the day after the last of them ends. The agreement calendar (`apply_calendar`) moves
customers across both kinds of dates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from crm_contracts.enums import Segment
from crm_platform.errors import DomainError
from eventsourcing.domain import Aggregate

from segmentation.policy import Policy
from segmentation.rules import (
    ONE_DAY,
    Agreement,
    PotentialSource,
    SegmentReason,
    ValueProgramme,
    local_date,
    require_aware,
    require_cvr,
    require_id,
    require_name,
    require_note,
    require_owner,
    require_potential,
)

_NAMESPACE: Final = uuid.UUID("3c0f5a4e-8d2b-4e61-9b7a-52d9e1f0c6a4")


class Customer(Aggregate):
    """A customer: its name, owner, assessed potential, annual agreement and segment."""

    class Registered(Aggregate.Created):
        customer_id: str
        name: str
        cvr: str | None
        owner: str | None
        segment: str
        prioritized: bool
        policy_version: int
        effective_on: date
        actor: str

    class Renamed(Aggregate.Event):
        name: str
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.name, aggregate.updated_by = self.name, self.actor

    class OwnerChanged(Aggregate.Event):
        owner: str | None
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.owner, aggregate.updated_by = self.owner, self.actor

    class PotentialAssessed(Aggregate.Event):
        amount: Decimal
        assessed_at: datetime
        source: str
        note: str | None
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.updated_by = self.actor
            # The latest assessment by `assessed_at` holds, so a discovery meeting delivered
            # late does not overwrite a newer manual assessment (it stays in the history).
            if aggregate.assessed_at is None or self.assessed_at >= aggregate.assessed_at:
                aggregate.potential = self.amount
                aggregate.assessed_at = self.assessed_at
                aggregate.potential_source = self.source

    class AgreementStarted(Aggregate.Event):
        starts_on: date  # the agreement on record after this event (an extension merges)
        ends_on: date
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.agreement = Agreement(self.starts_on, self.ends_on)
            aggregate.updated_by = self.actor

    class AgreementEnded(Aggregate.Event):
        ends_on: date  # new last day in force; before `starts_on` it is withdrawn altogether
        actor: str

        def apply(self, aggregate: Any) -> None:
            current = aggregate.agreement
            aggregate.agreement = (
                None
                if self.ends_on < current.starts_on
                else Agreement(current.starts_on, self.ends_on)
            )
            aggregate.updated_by = self.actor

    class ValueProgrammeSet(Aggregate.Event):
        starts_on: date  # the membership on record after this event (replaces the dates)
        ends_on: date | None  # None: open-ended
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.value_programme = ValueProgramme(self.starts_on, self.ends_on)
            aggregate.updated_by = self.actor

    class ValueProgrammeEnded(Aggregate.Event):
        ends_on: date  # new last day; before `starts_on` the membership is withdrawn
        actor: str

        def apply(self, aggregate: Any) -> None:
            current = aggregate.value_programme
            aggregate.value_programme = (
                None
                if self.ends_on < current.starts_on
                else ValueProgramme(current.starts_on, self.ends_on)
            )
            aggregate.updated_by = self.actor

    class SegmentHeldSince(Aggregate.Event):
        """The current segment counts as held since `since` (going live: the segment a
        customer had before the CRM knew it); earlier changes from `since` on are overridden
        for the pro-rating of targets (see `segment_history`)."""

        segment: str
        since: date
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.segment_since, aggregate.updated_by = self.since, self.actor

    class SegmentChanged(Aggregate.Event):
        from_segment: str
        to_segment: str
        reason: str
        policy_version: int
        effective_on: date  # the Copenhagen day from which the new segment counts
        prioritized: bool
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.segment, aggregate.prioritized = self.to_segment, self.prioritized
            aggregate.segment_since, aggregate.policy_version = (
                self.effective_on,
                self.policy_version,
            )
            aggregate.updated_by = self.actor

    class PrioritizedChanged(Aggregate.Event):
        """The segment stayed, but the policy's prioritized set moved around it (R8 changes)."""

        prioritized: bool
        reason: str
        policy_version: int
        effective_on: date
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.prioritized, aggregate.policy_version = self.prioritized, self.policy_version
            aggregate.updated_by = self.actor

    def __init__(
        self,
        customer_id: str,
        name: str,
        cvr: str | None,
        owner: str | None,
        segment: str,
        prioritized: bool,
        policy_version: int,
        effective_on: date,
        actor: str,
    ) -> None:
        self.customer_id, self.name, self.cvr, self.owner = customer_id, name, cvr, owner
        self.segment, self.prioritized = segment, prioritized
        self.segment_since, self.policy_version = effective_on, policy_version
        self.potential: Decimal | None = None
        self.assessed_at: datetime | None = None
        self.potential_source: str | None = None
        self.agreement: Agreement | None = None
        self.value_programme: ValueProgramme | None = None
        self.updated_by = actor

    @staticmethod
    def id_for(customer_id: str) -> UUID:
        return uuid.uuid5(_NAMESPACE, f"customer:{customer_id}")

    # -- commands -------------------------------------------------------------------------

    @classmethod
    def register(
        cls,
        *,
        customer_id: str,
        name: str,
        cvr: str | None,
        owner: str | None,
        policy: Policy,
        actor: str,
        now: datetime,
    ) -> Customer:
        customer_id = require_id(customer_id, "customer_id")
        segment = policy.segment_for(None, agreement_active=False)
        return cls._create(
            cls.Registered,
            id=cls.id_for(customer_id),
            timestamp=now,
            customer_id=customer_id,
            name=require_name(name),
            cvr=require_cvr(cvr),
            owner=require_owner(owner) if owner else None,
            segment=segment.value,
            prioritized=policy.is_prioritized(segment),
            policy_version=policy.version,
            effective_on=local_date(now),
            actor=actor,
        )

    def rename(self, name: str, *, actor: str, now: datetime) -> None:
        name = require_name(name)
        if name == self.name:
            raise DomainError(
                "name_unchanged",
                f"the customer is already named {name!r}",
                kind="conflict",
                field="name",
            )
        self.trigger_event(self.Renamed, timestamp=now, name=name, actor=actor)

    def change_owner(self, owner: str | None, *, actor: str, now: datetime) -> None:
        owner = require_owner(owner) if owner else None
        if owner == self.owner:
            raise DomainError(
                "owner_unchanged",
                f"the customer is already owned by {owner or 'nobody'}",
                kind="conflict",
                field="owner",
            )
        self.trigger_event(self.OwnerChanged, timestamp=now, owner=owner, actor=actor)

    def assess_potential(
        self,
        amount: object,
        *,
        assessed_at: datetime,
        source: PotentialSource | str,
        note: str | None,
        policy: Policy,
        actor: str,
        now: datetime,
    ) -> bool:
        """Record an assessment; False (nothing recorded) when it repeats the current one."""
        value = require_potential(amount)
        require_aware(assessed_at, "assessed_at")
        if assessed_at > now:
            raise DomainError(
                "assessed_at",
                "a potential cannot be assessed in the future",
                details={"field": "assessed_at"},
            )
        try:
            origin = PotentialSource(source)
        except ValueError:
            raise DomainError(
                "source",
                "source is one of " + ", ".join(s.value for s in PotentialSource),
                details={"field": "source"},
            ) from None
        if (value, assessed_at, origin.value) == (
            self.potential,
            self.assessed_at,
            self.potential_source,
        ):
            return False  # a redelivered assessment (e.g. the same discovery meeting)
        self.trigger_event(
            self.PotentialAssessed,
            timestamp=now,
            amount=value,
            assessed_at=assessed_at,
            source=origin.value,
            note=require_note(note),
            actor=actor,
        )
        self.refresh(
            policy,
            cause=SegmentReason.POTENTIAL_ASSESSED,
            effective_on=local_date(assessed_at),
            actor=actor,
            now=now,
        )
        return True

    def start_agreement(
        self, starts_on: date, ends_on: date, *, policy: Policy, actor: str, now: datetime
    ) -> None:
        """Record an annual agreement (both days inclusive). One agreement is on record at a
        time: a new one that overlaps or directly follows the current one extends it (a
        renewal keeps the customer in `annual_agreement` without a gap)."""
        today = local_date(now)
        if ends_on < starts_on:
            raise DomainError(
                "ends_on", "ends_on must not be before starts_on", details={"field": "ends_on"}
            )
        if ends_on < today:
            raise DomainError(
                "ends_on",
                f"an agreement that ended before today ({today}) changes nothing",
                details={"field": "ends_on"},
            )
        merged = Agreement(starts_on, ends_on)
        current = self.agreement
        if current is not None and current.ends_on >= today:
            if starts_on > current.ends_on + ONE_DAY or ends_on < current.starts_on - ONE_DAY:
                raise DomainError(
                    "agreement_in_force",
                    f"the customer has an agreement {current.starts_on}..{current.ends_on}; "
                    "a new one must overlap or directly follow it (or end the current first)",
                    kind="conflict",
                    details={"starts_on": current.starts_on, "ends_on": current.ends_on},
                )
            merged = Agreement(min(starts_on, current.starts_on), max(ends_on, current.ends_on))
            if merged == current:
                raise DomainError(
                    "agreement_unchanged", "this agreement is already on record", kind="conflict"
                )
        self.trigger_event(
            self.AgreementStarted,
            timestamp=now,
            starts_on=merged.starts_on,
            ends_on=merged.ends_on,
            actor=actor,
        )
        self.refresh(
            policy, cause=SegmentReason.AGREEMENT_STARTED, effective_on=today, actor=actor, now=now
        )

    def end_agreement(
        self, ends_on: date | None, *, policy: Policy, actor: str, now: datetime
    ) -> None:
        """Shorten the current (or upcoming) agreement so its last day is `ends_on`; by
        default yesterday, i.e. not in force from today. Before its first day: withdrawn."""
        today = local_date(now)
        current = self.agreement
        if current is None or current.ends_on < today:
            raise DomainError(
                "no_agreement",
                "the customer has no current or upcoming agreement",
                kind="conflict",
            )
        last_day = ends_on if ends_on is not None else today - ONE_DAY
        if last_day < today - ONE_DAY:
            raise DomainError(
                "ends_on",
                "an agreement cannot end retroactively: "
                f"the earliest last day is {today - ONE_DAY}",
                details={"field": "ends_on"},
            )
        if last_day >= current.ends_on:
            raise DomainError(
                "ends_on",
                f"ending shortens the agreement, which already ends on {current.ends_on}",
                details={"field": "ends_on"},
            )
        self.trigger_event(self.AgreementEnded, timestamp=now, ends_on=last_day, actor=actor)
        self.refresh(
            policy, cause=SegmentReason.AGREEMENT_ENDED, effective_on=today, actor=actor, now=now
        )

    def set_value_programme(
        self,
        starts_on: date,
        ends_on: date | None,
        *,
        policy: Policy,
        actor: str,
        now: datetime,
    ) -> None:
        """Record the customer's membership of the value programme (both days inclusive;
        `ends_on` None: open-ended). One membership is on record at a time: this one replaces
        the dates of the current or upcoming one, or follows one that is over."""
        today = local_date(now)
        if ends_on is not None and ends_on < starts_on:
            raise DomainError("ends_on", "ends_on must not be before starts_on", field="ends_on")
        if ends_on is not None and ends_on < today:
            raise DomainError(
                "ends_on",
                f"a membership that ended before today ({today}) changes nothing; "
                "to end the current one, delete it",
                field="ends_on",
            )
        wanted = ValueProgramme(starts_on, ends_on)
        if wanted == self.value_programme:
            raise DomainError(
                "value_programme_unchanged",
                "this membership of the value programme is already on record",
                kind="conflict",
            )
        self.trigger_event(
            self.ValueProgrammeSet, timestamp=now, starts_on=starts_on, ends_on=ends_on, actor=actor
        )
        self.refresh(
            policy,
            cause=SegmentReason.VALUE_PROGRAMME_STARTED,
            effective_on=today,
            actor=actor,
            now=now,
        )

    def end_value_programme(self, *, policy: Policy, actor: str, now: datetime) -> None:
        """End the current membership: yesterday was its last day, so it is not in force from
        today. An upcoming membership (from today on) is withdrawn altogether."""
        today = local_date(now)
        current = self.value_programme
        if current is None or current.over_before(today):
            raise DomainError(
                "no_value_programme",
                "the customer has no current or upcoming membership of the value programme",
                kind="conflict",
            )
        self.trigger_event(
            self.ValueProgrammeEnded, timestamp=now, ends_on=today - ONE_DAY, actor=actor
        )
        self.refresh(
            policy,
            cause=SegmentReason.VALUE_PROGRAMME_ENDED,
            effective_on=today,
            actor=actor,
            now=now,
        )

    def hold_segment_since(self, since: date, *, actor: str, now: datetime) -> bool:
        """Count the current segment as held since `since` (an import going live: the
        customer's segment before the CRM). Only back in time, never ahead of today; False
        (nothing recorded) when it is already counted from that day."""
        today = local_date(now)
        if since > today:
            raise DomainError(
                "segment_since",
                f"segment_since cannot be after today ({today})",
                field="segment_since",
            )
        if since == self.segment_since:
            return False
        if since > self.segment_since:
            raise DomainError(
                "segment_since",
                f"the segment {self.segment} has counted since {self.segment_since} already; "
                "segment_since can only move that back",
                field="segment_since",
            )
        self.trigger_event(
            self.SegmentHeldSince, timestamp=now, segment=self.segment, since=since, actor=actor
        )
        return True

    def refresh(
        self,
        policy: Policy,
        *,
        cause: SegmentReason,
        effective_on: date,
        actor: str,
        now: datetime,
        today: date | None = None,
    ) -> bool:
        """Recompute the segment and prioritized flag under `policy` on today's date; record
        a change only if there is one. Returns whether anything was recorded.

        A change made by the dates of an agreement or a value programme membership is
        attributed to them (reason and day), as is one found late by the calendar.
        `effective_on` never goes before the previous change nor after today, so the history
        stays ordered for the pro-rating of targets.
        """
        today = today or local_date(now)
        target = policy.segment_for(self.potential, self.in_annual_agreement_on(today))
        prioritized = policy.is_prioritized(target)
        reason, when = cause, effective_on
        if target is Segment.ANNUAL_AGREEMENT and self.segment != target:
            reason, when = self._entered_annual_agreement(today)
        elif self.segment == Segment.ANNUAL_AGREEMENT and target is not Segment.ANNUAL_AGREEMENT:
            reason, when = self._left_annual_agreement(today, cause)
        when = min(max(when, self.segment_since), today)
        if target != self.segment:
            self.trigger_event(
                self.SegmentChanged,
                timestamp=now,
                from_segment=self.segment,
                to_segment=target.value,
                reason=reason.value,
                policy_version=policy.version,
                effective_on=when,
                prioritized=prioritized,
                actor=actor,
            )
            return True
        if prioritized != self.prioritized:
            self.trigger_event(
                self.PrioritizedChanged,
                timestamp=now,
                prioritized=prioritized,
                reason=reason.value,
                policy_version=policy.version,
                effective_on=when,
                actor=actor,
            )
            return True
        return False

    def _entered_annual_agreement(self, today: date) -> tuple[SegmentReason, date]:
        """Why and since when the customer is in `annual_agreement` today: what is in force
        and started first (the agreement, when both started on one day)."""
        starts: list[tuple[date, SegmentReason]] = []
        if self.agreement is not None and self.agreement.active_on(today):
            starts.append((self.agreement.starts_on, SegmentReason.AGREEMENT_STARTED))
        if self.value_programme is not None and self.value_programme.active_on(today):
            starts.append((self.value_programme.starts_on, SegmentReason.VALUE_PROGRAMME_STARTED))
        day, reason = min(starts, key=lambda start: start[0])
        return reason, day

    def _left_annual_agreement(
        self, today: date, cause: SegmentReason
    ) -> tuple[SegmentReason, date]:
        """Why and from when the customer is no longer in `annual_agreement`: the day after
        the last of the agreement and the membership that ended; today when neither ended
        (withdrawn, or moved to a later start)."""
        ends: list[tuple[date, SegmentReason]] = []
        if self.agreement is not None and self.agreement.ends_on < today:
            ends.append((self.agreement.ends_on + ONE_DAY, SegmentReason.AGREEMENT_ENDED))
        programme = self.value_programme
        if programme is not None and programme.ends_on is not None and programme.ends_on < today:
            ends.append((programme.ends_on + ONE_DAY, SegmentReason.VALUE_PROGRAMME_ENDED))
        if ends:
            day, reason = max(ends, key=lambda end: end[0])
            return reason, day
        if cause in (SegmentReason.VALUE_PROGRAMME_STARTED, SegmentReason.VALUE_PROGRAMME_ENDED):
            return SegmentReason.VALUE_PROGRAMME_ENDED, today
        return SegmentReason.AGREEMENT_ENDED, today

    # -- queries --------------------------------------------------------------------------

    def agreement_active_on(self, day: date) -> bool:
        return self.agreement is not None and self.agreement.active_on(day)

    def value_programme_active_on(self, day: date) -> bool:
        return self.value_programme is not None and self.value_programme.active_on(day)

    def in_annual_agreement_on(self, day: date) -> bool:
        """An agreement or a value programme membership is in force on `day`."""
        return self.agreement_active_on(day) or self.value_programme_active_on(day)


CUSTOMER_EVENTS: Final[tuple[type[Aggregate.Event], ...]] = (
    Customer.Registered,
    Customer.Renamed,
    Customer.OwnerChanged,
    Customer.PotentialAssessed,
    Customer.AgreementStarted,
    Customer.AgreementEnded,
    Customer.ValueProgrammeSet,
    Customer.ValueProgrammeEnded,
    Customer.SegmentHeldSince,
    Customer.SegmentChanged,
    Customer.PrioritizedChanged,
)
"""Every event that changes a customer's snapshot (the relay publishes after each); the
policy book, recomputations and idempotency records stay inside the service."""


def segment_history(events: Iterable[object]) -> list[tuple[date, Segment]]:
    """(effective_on, segment) from registration on, in event order: the input of the target
    pro-rating (targets.py). A `SegmentHeldSince` replaces what was recorded from its day on
    by the segment it names, held since that day."""
    entries: list[tuple[date, Segment]] = []
    for event in events:
        if isinstance(event, Customer.Registered):
            entries.append((event.effective_on, Segment(event.segment)))
        elif isinstance(event, Customer.SegmentChanged):
            entries.append((event.effective_on, Segment(event.to_segment)))
        elif isinstance(event, Customer.SegmentHeldSince):
            entries = [e for e in entries if e[0] < event.since]
            entries.append((event.since, Segment(event.segment)))
    return entries
