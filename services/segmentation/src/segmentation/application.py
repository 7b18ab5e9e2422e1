"""The segmentation service's eventsourcing Application: commands, queries, the one transaction.

Every command loads what it needs, checks who may do it, asks the aggregates (which enforce
the rules), and saves everything it changed in one `save`: the customer, its registry row
(see registry.py), the policy book, a recomputation record and an idempotency record commit
together or not at all. What the commands take and return is defined here too (`NewCustomer`,
`Search`, `Outcome`, `PolicyOutcome`, `CustomerView`, `CalendarResult`); how the events are stored
(recorders, the registry rows in the same save, the cached policy) is store.py's.

Who may (the guide leaves it open; decided here): potentials, agreements, value programme
memberships, owners, the policy, the calendar and bulk imports are for sales managers and
services (`is_manager or is_service`). Registering is for managers and services, and for a
consultant registering a customer she owns herself (so a consultant can add a prospect she
found); renaming is also open to the customer's owner. Reading is for anyone authenticated
(the API decides).

Policy races: a command judges a customer by the policy current when it starts. If a new
policy commits before the command does, the recomputation may already have passed that
customer, so after saving, the command looks at the policy again and, if it moved, refreshes
the customer under the new one (`_catch_up`). Either the recomputation sees the command's
save (it starts after the policy commits), or the command sees the new policy.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from crm_contracts.enums import Segment
from crm_platform.actors import Actor, Clock, system_clock
from crm_platform.auth.principal import normalize_user_id
from crm_platform.errors import DomainError, Forbidden, LostRace, NotFound
from crm_platform.idempotency import (
    IdempotencyKey,
    first_outcome,
    idempotent,
    keyed,
    replayed_by,
    require_version,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from segmentation.domain import Customer, segment_history
from segmentation.policy import DEFAULT_POLICY, AdoptedPolicy, Policy, PolicyBook, parse_policy
from segmentation.recompute import Recomputation
from segmentation.registry import RegistryRow
from segmentation.rules import (
    CVR_QUERY,
    PotentialSource,
    SegmentReason,
    local_date,
    search_words,
)
from segmentation.store import SegmentationStore

log = logging.getLogger(__name__)

CATCH_UP_ATTEMPTS: Final = 5


# -- what the commands take and return ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a customer command produced; `replayed` when an Idempotency-Key repeated it."""

    customer: Customer
    status: int = 200
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    policy: AdoptedPolicy
    recomputation: Recomputation
    status: int = 201
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CustomerView:
    """A customer and the policy version in force (its segment is judged by that policy
    unless a recomputation is still on its way to it)."""

    customer: Customer
    policy_version: int

    @property
    def segment(self) -> Segment:
        return Segment(self.customer.segment)

    @property
    def prioritized(self) -> bool:
        return self.customer.prioritized

    @property
    def version(self) -> int:
        return self.customer.version


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """One customer of a bulk registration (imports), optionally with its potential."""

    name: str
    customer_id: str | None = None
    cvr: str | None = None
    owner: str | None = None
    potential: Decimal | None = None
    assessed_at: datetime | None = None
    note: str | None = None
    source: PotentialSource = PotentialSource.IMPORT
    # An annual agreement (both days inclusive) recorded in the same transaction (imports).
    agreement_starts_on: date | None = None
    agreement_ends_on: date | None = None
    # A value programme membership (ends_on None: open-ended), in the same transaction.
    value_programme_starts_on: date | None = None
    value_programme_ends_on: date | None = None
    # Going live: the segment the customer ends up in counts as held since this day.
    segment_since: date | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """What `GET /customers?q=` looks for: a CVR number (eight digits) exactly, or else
    names with a word beginning with each of the folded `words`; a text without a letter or
    a digit finds nothing."""

    cvr: str | None = None
    words: tuple[str, ...] = ()

    @classmethod
    def of(cls, text: str) -> Search:
        text = text.strip()
        if CVR_QUERY.match(text):
            return cls(cvr=text)
        return cls(words=tuple(search_words(text)))

    @property
    def finds_nothing(self) -> bool:
        return self.cvr is None and not self.words


@dataclass(frozen=True, slots=True)
class CalendarResult:
    today: date
    checked: int
    changed: int


def exists(customer_id: str, how: str = "already") -> DomainError:
    return DomainError(
        "customer_exists",
        f"customer {customer_id} is {how} registered"
        if how == "already"
        else f"customer {customer_id} appears {how}",
        kind="conflict",
        details={"customer_id": customer_id},
    )


class SegmentationApplication(SegmentationStore):
    name = "segmentation"  # pinned: the PostgreSQL tables are named after it

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock = system_clock,
        on_saved: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(env, on_saved=on_saved)
        self.clock = clock

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

    def new_customer(
        self, actor: Actor, item: NewCustomer, adopted: AdoptedPolicy, now: datetime
    ) -> Customer:
        """One customer of a bulk registration, built and judged by the domain, not saved:
        an import builds each row's customer once, and a row the domain refuses is that
        row's problem alone (save the others with `save_new_customers`)."""
        customer = Customer.register(
            customer_id=item.customer_id or str(uuid.uuid4()),
            name=item.name,
            cvr=item.cvr,
            owner=normalize_user_id(item.owner) if item.owner else None,
            policy=adopted.policy,
            actor=actor.user_id,
            now=now,
        )
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
        if item.value_programme_starts_on is not None:
            customer.set_value_programme(
                item.value_programme_starts_on,
                item.value_programme_ends_on,
                policy=adopted.policy,
                actor=actor.user_id,
                now=now,
            )
        if item.segment_since is not None:
            customer.hold_segment_since(item.segment_since, actor=actor.user_id, now=now)
        return customer

    def save_new_customers(
        self, actor: Actor, customers: Sequence[Customer], adopted: AdoptedPolicy
    ) -> list[Customer]:
        """Saves customers built by `new_customer` under `adopted` in one transaction.
        All or nothing: if one is already registered, none is (see `existing_customer_ids`)."""
        self._require_manager(actor, "import customers")
        return self._save_new(customers, adopted, None, self.clock())

    def _register_many(
        self, actor: Actor, items: Sequence[NewCustomer], idempotency: IdempotencyKey | None
    ) -> list[Customer]:
        adopted, now = self.current_policy(), self.clock()
        built = [self.new_customer(actor, item, adopted, now) for item in items]
        return self._save_new(built, adopted, idempotency, now)

    def _save_new(
        self,
        built: Sequence[Customer],
        adopted: AdoptedPolicy,
        idempotency: IdempotencyKey | None,
        now: datetime,
    ) -> list[Customer]:
        customers: dict[UUID, Customer] = {}
        for customer in built:
            if customer.id in customers:
                raise exists(customer.customer_id, "twice in this import")
            customers[customer.id] = customer
        registered: list[Aggregate] = list(customers.values())
        if idempotency is not None:  # only register_assessed_customer's, for its one customer
            registered = keyed(registered, idempotency, registered[0], 201, now)
        try:
            self.save(*registered)
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
        require_version(customer, expected_version, "customer")
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

    @idempotent
    def set_value_programme(
        self,
        actor: Actor,
        customer_id: str,
        *,
        starts_on: date,
        ends_on: date | None = None,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        """The customer's membership of the value programme (`ends_on` None: open-ended)."""
        self._require_manager(actor, "record value programme memberships")
        adopted = self.current_policy()
        customer = self._for_change(customer_id, expected_version)
        customer.set_value_programme(
            starts_on, ends_on, policy=adopted.policy, actor=actor.user_id, now=self.clock()
        )
        return self._save(customer, adopted, idempotency)

    @idempotent
    def end_value_programme(
        self,
        actor: Actor,
        customer_id: str,
        *,
        expected_version: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        """Yesterday was the membership's last day (an upcoming one is withdrawn)."""
        self._require_manager(actor, "end value programme memberships")
        adopted = self.current_policy()
        customer = self._for_change(customer_id, expected_version)
        customer.end_value_programme(policy=adopted.policy, actor=actor.user_id, now=self.clock())
        return self._save(customer, adopted, idempotency)

    def apply_calendar(
        self, actor: Actor, today: date | None = None, *, batch_size: int = 500
    ) -> CalendarResult:
        """Move customers into or out of `annual_agreement` as their agreements and value
        programme memberships start and end (run daily, and safe to run any number of times:
        no change, no event)."""
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
        require_version(book, expected_version, "policy")
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
        try:
            self.save(*keyed(items, idempotency, job, 201, now))
        except IntegrityError:
            # Under a key, `replayed_by` then looks for an earlier outcome of that key.
            raise LostRace(
                "the policy changed while this one was adopted; read it again", retry=True
            ) from None
        return PolicyOutcome(adopted, job)

    def _replay_policy(self, key: IdempotencyKey) -> PolicyOutcome | None:
        first = first_outcome(self.repository, key)
        if first is None:
            return None
        # The recomputation as it stands now (it has moved on since it was queued).
        job: Recomputation = self.repository.get(first[0].id)
        return PolicyOutcome(self.policy(job.policy_version), job, first[1], replayed=True)

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

    def recomputation(self, recomputation_id: UUID) -> Recomputation:
        found = self._get(recomputation_id)
        if not isinstance(found, Recomputation):
            raise NotFound(f"no recomputation {recomputation_id}")
        return found

    def customer(self, customer_id: str, *, version: int | None = None) -> CustomerView:
        return CustomerView(self._customer(customer_id, version), self.current_policy().version)

    def history(self, customer_id: str) -> list[Any]:
        events = list(self.events.get(Customer.id_for(customer_id)))
        if not events:
            raise NotFound(f"no customer {customer_id}")
        return events

    def segment_history(self, customer_id: str) -> list[tuple[date, Segment]]:
        """(effective_on, segment) from registration on: the input of the target pro-rating."""
        return segment_history(self.history(customer_id))

    def customers(
        self,
        *,
        segment: Segment | None = None,
        owner: str | None = None,
        search: Search | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[RegistryRow]:
        if search is not None and search.finds_nothing:
            return []
        return self.registry.list_customers(
            segment=segment.value if segment else None,
            owner=normalize_user_id(owner) if owner else None,
            cvr=search.cvr if search else None,
            words=search.words if search else (),
            after=after,
            limit=limit,
        )

    # -- what every customer command shares -----------------------------------------------

    def _customer(self, customer_id: str, version: int | None = None) -> Customer:
        found = self._get(Customer.id_for(customer_id), version)
        if not isinstance(found, Customer):
            raise NotFound(f"no customer {customer_id}")
        return found

    def _for_change(self, customer_id: str, expected_version: int | None) -> Customer:
        customer = self._customer(customer_id)
        require_version(customer, expected_version, "customer")
        return customer

    def _require_manager(self, actor: Actor, action: str) -> None:
        if not (actor.is_manager or actor.is_service):
            raise Forbidden(f"only a sales manager may {action}")

    def _replay(self, key: IdempotencyKey | None) -> Outcome | None:
        first = first_outcome(self.repository, key)
        return Outcome(first[0], first[1], replayed=True) if first else None

    def _save(
        self,
        customer: Customer,
        adopted: AdoptedPolicy | None,
        idempotency: IdempotencyKey | None,
        *,
        status: int = 200,
        creating: bool = False,
    ) -> Outcome:
        try:
            self.save(*keyed([customer], idempotency, customer, status, self.clock()))
        except IntegrityError:
            # Under a key, `idempotent` then looks for an earlier outcome of that key.
            if creating:
                raise exists(customer.customer_id) from None
            raise LostRace(
                "the customer changed while this command ran; read it again and retry", retry=True
            ) from None
        if adopted is not None:
            customer = self._catch_up(customer, adopted.version)
        return Outcome(customer, status)

    def _catch_up(self, customer: Customer, judged_by: int) -> Customer:
        """After a save judged by policy `judged_by`: refresh under a newer one, if any.

        The command has committed by now, so nothing here may fail it: the answer must say
        what was saved. Should the catch-up itself fail (the database went away in between),
        the saved customer is answered and the failure logged; its next change, or the next
        recomputation, judges it by the policy then in force.
        """
        try:
            return self._try_catch_up(customer, judged_by)
        except Exception:
            log.exception(
                "customer %s was saved, but its catch-up with a newer policy failed",
                customer.customer_id,
            )
            return customer

    def _try_catch_up(self, customer: Customer, judged_by: int) -> Customer:
        for _ in range(CATCH_UP_ATTEMPTS):
            adopted = self.current_policy()
            if adopted.version == judged_by:
                return customer
            customer = self._customer(customer.customer_id)
            now = self.clock()
            if customer.refresh(
                adopted.policy,
                cause=SegmentReason.POLICY_CHANGED,
                effective_on=adopted.effective_on or local_date(now),
                actor=adopted.adopted_by or customer.updated_by,
                now=now,
            ):
                try:
                    self.save(customer)
                except IntegrityError:
                    continue  # someone else saved: they judged by the current policy or we retry
            judged_by = adopted.version
        return customer
