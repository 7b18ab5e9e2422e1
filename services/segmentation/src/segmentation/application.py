"""The segmentation service's eventsourcing Application: commands, queries, the one transaction.

Every command loads what it needs, checks who may do it, asks the aggregates (which enforce
the rules), and saves everything it changed in one `save`: the customer, its registry row
(see registry.py), the policy book, a recomputation record and an idempotency record commit
together or not at all. The storage plumbing and the helpers every customer command shares
are in store.py.

Who may (the guide leaves it open; decided here): potentials, agreements, owners, the policy,
the calendar and bulk imports are for sales managers and services (`is_manager or
is_service`). Registering is for managers and services, and for a consultant registering a
customer she owns herself (so a consultant can add a prospect she found); renaming is also
open to the customer's owner. Reading is for anyone authenticated (the API decides).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from crm_contracts.enums import Segment
from crm_platform.actors import Actor
from crm_platform.auth.principal import normalize_user_id
from crm_platform.idempotency import (
    IdempotencyKey,
    IdempotencyRecord,
    idempotent,
    replayed_by,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from segmentation.domain import Customer
from segmentation.policy import DEFAULT_POLICY, AdoptedPolicy, Policy, PolicyBook, parse_policy
from segmentation.recompute import Recomputation
from segmentation.registry import RegistryRow
from segmentation.rules import (
    CommandRefused,
    DomainError,
    Forbidden,
    LostRace,
    NotFound,
    PotentialSource,
    SegmentReason,
    StaleVersion,
    local_date,
)
from segmentation.store import CATCH_UP_ATTEMPTS, SegmentationStore, exists
from segmentation.views import (
    CalendarResult,
    CustomerView,
    NewCustomer,
    Outcome,
    PolicyOutcome,
)

# Re-exported: the API and the tests map these errors.
__all__ = [
    "CommandRefused",
    "DomainError",
    "Forbidden",
    "LostRace",
    "NotFound",
    "SegmentationApplication",
    "StaleVersion",
]


class SegmentationApplication(SegmentationStore):
    name = "segmentation"  # pinned: the PostgreSQL tables are named after it

    # -- customers ------------------------------------------------------------------------

    @idempotent
    def register_customer(
        self,
        actor: Actor,
        *,
        name: str,
        customer_id: str | None = None,
        cvr: str | None = None,
        owner: str | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        """Managers and services register any customer; a consultant only one they own."""
        owner = normalize_user_id(owner) if owner else None
        if not (actor.is_manager or actor.is_service) and (
            owner is None or not actor.may_act_for(owner)
        ):
            raise Forbidden("a consultant may only register customers they own themselves")
        adopted = self.current_policy()
        customer = Customer.register(
            customer_id=customer_id or str(uuid.uuid4()),
            name=name,
            cvr=cvr,
            owner=owner,
            policy=adopted.policy,
            actor=actor.user_id,
            now=self.clock(),
        )
        if self.recorder.select_events(customer.id, limit=1):
            raise exists(customer.customer_id)
        return self._save(customer, adopted, idempotency, status=201, creating=True)

    @idempotent
    def register_assessed_customer(
        self, actor: Actor, item: NewCustomer, *, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        """A customer and its potential in one transaction (managers only, as any potential)."""
        self._require_manager(actor, "assess potentials")
        (customer,) = self._register_many(actor, [item], idempotency)
        return Outcome(customer, 201)

    def register_customers(self, actor: Actor, items: Sequence[NewCustomer]) -> list[Customer]:
        """Register many customers (with potentials and agreements) in one transaction (imports).
        All or nothing: if one is already registered, none is (see `existing_customer_ids`)."""
        self._require_manager(actor, "import customers")
        return self._register_many(actor, items, None)

    def _register_many(
        self, actor: Actor, items: Sequence[NewCustomer], idempotency: IdempotencyKey | None
    ) -> list[Customer]:
        adopted, now = self.current_policy(), self.clock()
        customers: dict[UUID, Customer] = {}
        for item in items:
            customer = Customer.register(
                customer_id=item.customer_id or str(uuid.uuid4()),
                name=item.name,
                cvr=item.cvr,
                owner=normalize_user_id(item.owner) if item.owner else None,
                policy=adopted.policy,
                actor=actor.user_id,
                now=now,
            )
            if customer.id in customers:
                raise exists(customer.customer_id, "twice in this import")
            if item.potential is not None:
                customer.assess_potential(
                    item.potential,
                    assessed_at=item.assessed_at or now,
                    source=item.source,
                    note=item.note,
                    policy=adopted.policy,
                    actor=actor.user_id,
                    now=now,
                )
            if item.agreement_starts_on is not None and item.agreement_ends_on is not None:
                customer.start_agreement(
                    item.agreement_starts_on,
                    item.agreement_ends_on,
                    policy=adopted.policy,
                    actor=actor.user_id,
                    now=now,
                )
            customers[customer.id] = customer
        records = [
            IdempotencyRecord.record(idempotency, customer.id, customer.version, 201, now)
            for customer in customers.values()
            if idempotency is not None
        ]
        try:
            self.save(*customers.values(), *records)
        except IntegrityError:
            raise exists("one of these customers", "already") from None
        if self.current_policy().version != adopted.version:
            return [self._catch_up(c, adopted.version) for c in customers.values()]
        return list(customers.values())

    @idempotent
    def rename(
        self,
        actor: Actor,
        customer_id: str,
        *,
        name: str,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        customer = self._customer(customer_id)
        if not (actor.is_manager or actor.is_service) and not (
            customer.owner and actor.may_act_for(customer.owner)
        ):
            raise Forbidden("only the customer's owner or a sales manager may rename it")
        self._require_version(customer, expected_version)
        customer.rename(name, actor=actor.user_id, now=self.clock())
        return self._save(customer, None, idempotency)

    @idempotent
    def change_owner(
        self,
        actor: Actor,
        customer_id: str,
        *,
        owner: str | None,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        self._require_manager(actor, "change a customer's owner")
        customer = self._for_change(customer_id, expected_version)
        owner = normalize_user_id(owner) if owner else None
        customer.change_owner(owner, actor=actor.user_id, now=self.clock())
        return self._save(customer, None, idempotency)

    @idempotent
    def assess_potential(
        self,
        actor: Actor,
        customer_id: str,
        *,
        amount: Decimal | str | int,
        source: PotentialSource | str = PotentialSource.MANUAL,
        assessed_at: datetime | None = None,
        note: str | None = None,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        """Also what the discovery-meeting consumer calls (source `discovery_meeting`); an
        assessment repeating the current one records nothing."""
        self._require_manager(actor, "assess potentials")
        now, adopted = self.clock(), self.current_policy()
        customer = self._for_change(customer_id, expected_version)
        customer.assess_potential(
            amount,
            assessed_at=assessed_at or now,
            source=source,
            note=note,
            policy=adopted.policy,
            actor=actor.user_id,
            now=now,
        )
        return self._save(customer, adopted, idempotency)

    @idempotent
    def start_agreement(
        self,
        actor: Actor,
        customer_id: str,
        *,
        starts_on: date,
        ends_on: date,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        self._require_manager(actor, "record annual agreements")
        adopted = self.current_policy()
        customer = self._for_change(customer_id, expected_version)
        customer.start_agreement(
            starts_on, ends_on, policy=adopted.policy, actor=actor.user_id, now=self.clock()
        )
        return self._save(customer, adopted, idempotency)

    @idempotent
    def end_agreement(
        self,
        actor: Actor,
        customer_id: str,
        *,
        ends_on: date | None = None,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        """`ends_on` is the agreement's new last day (inclusive); default yesterday."""
        self._require_manager(actor, "end annual agreements")
        adopted = self.current_policy()
        customer = self._for_change(customer_id, expected_version)
        customer.end_agreement(
            ends_on, policy=adopted.policy, actor=actor.user_id, now=self.clock()
        )
        return self._save(customer, adopted, idempotency)

    def apply_calendar(
        self, actor: Actor, today: date | None = None, *, batch_size: int = 500
    ) -> CalendarResult:
        """Move customers into or out of `annual_agreement` as their agreements start and
        end (run daily, and safe to run any number of times: no change, no event)."""
        self._require_manager(actor, "apply the agreement calendar")
        now = self.clock()
        day = today or local_date(now)
        if day > local_date(now):
            raise DomainError("today", "the calendar cannot be applied ahead of today")
        candidates = self.registry.calendar_candidates(day)
        changed = 0
        for start in range(0, len(candidates), batch_size):
            ids = [r.id for r in candidates[start : start + batch_size]]
            for _ in range(CATCH_UP_ATTEMPTS):
                adopted = self.current_policy()
                touched = [
                    c
                    for c in self.load_customers(ids)
                    if c.refresh(
                        adopted.policy,
                        cause=SegmentReason.POLICY_CHANGED,
                        effective_on=day,
                        actor=actor.user_id,
                        now=now,
                        today=day,
                    )
                ]
                try:
                    self.save(*touched)
                except IntegrityError:
                    continue  # someone changed one of them meanwhile: judge them again
                changed += len(touched)
                break
            else:
                raise LostRace("customers kept changing while the calendar ran", retry=True)
        return CalendarResult(day, len(candidates), changed)

    # -- policy ---------------------------------------------------------------------------

    @replayed_by("_replay_policy")
    def set_policy(
        self,
        actor: Actor,
        policy: Mapping[str, Any] | Policy,
        *,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> PolicyOutcome:
        """Adopt a new policy version and queue the recomputation of every customer."""
        self._require_manager(actor, "change the segmentation policy")
        now = self.clock()
        book = self._book() or PolicyBook.open(now)
        if expected_version is not None and expected_version != book.version:
            raise StaleVersion(
                f"the policy is at version {book.version}, not {expected_version}; read it again",
                current_version=book.version,
            )
        data = policy.to_json() if isinstance(policy, Policy) else policy
        draft = parse_policy(data, version=book.version + 1)
        previous = book.current.recomputation_id
        job = Recomputation.queue(
            policy_version=draft.version,
            effective_on=local_date(now),
            total=self.registry.registry_count(),
            actor=actor.user_id,
            now=now,
        )
        adopted = book.revise(
            draft,
            effective_on=job.effective_on,
            recomputation_id=job.id,
            actor=actor.user_id,
            now=now,
        )
        items: list[Aggregate] = [book, job]
        if previous is not None:
            older: Recomputation = self.repository.get(previous)
            older.supersede(job.id, now)
            items.append(older)
        if idempotency is not None:
            items.append(IdempotencyRecord.record(idempotency, job.id, job.version, 201, now))
        try:
            self.save(*items)
        except IntegrityError:
            # Under a key, `replayed_by` then looks for an earlier outcome of that key.
            raise LostRace(
                "the policy changed while this one was adopted; read it again", retry=True
            ) from None
        return PolicyOutcome(adopted, job)

    def _replay_policy(self, key: IdempotencyKey) -> PolicyOutcome | None:
        record = self._idempotency_record(key)
        if record is None:
            return None
        job: Recomputation = self.repository.get(record.resource_id)
        return PolicyOutcome(self.policy(job.policy_version), job, record.status, replayed=True)

    def policy(self, version: int | None = None) -> AdoptedPolicy:
        if version is None:
            return self.current_policy()
        book = self._book()
        found = (
            book.get(version) if book else (AdoptedPolicy(DEFAULT_POLICY) if version == 1 else None)
        )
        if found is None:
            raise NotFound(f"no policy version {version}")
        return found

    # -- queries --------------------------------------------------------------------------

    def customer(self, customer_id: str, *, version: int | None = None) -> CustomerView:
        return CustomerView(self._customer(customer_id, version), self.current_policy().version)

    def history(self, customer_id: str) -> list[Any]:
        events = list(self.events.get(Customer.id_for(customer_id)))
        if not events:
            raise NotFound(f"no customer {customer_id}")
        return events

    def segment_history(self, customer_id: str) -> list[tuple[date, Segment]]:
        """(effective_on, segment) from registration on: the input of the target pro-rating."""
        entries: list[tuple[date, Segment]] = []
        for event in self.history(customer_id):
            if isinstance(event, Customer.Registered):
                entries.append((event.effective_on, Segment(event.segment)))
            elif isinstance(event, Customer.SegmentChanged):
                entries.append((event.effective_on, Segment(event.to_segment)))
        return entries

    def customers(
        self,
        *,
        segment: Segment | None = None,
        owner: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[RegistryRow]:
        return self.registry.list_customers(
            segment=segment.value if segment else None,
            owner=normalize_user_id(owner) if owner else None,
            after=after,
            limit=limit,
        )
