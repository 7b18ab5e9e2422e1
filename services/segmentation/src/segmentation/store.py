"""The eventsourcing plumbing of the segmentation application, and its command helpers.

Which recorder (SQLite or PostgreSQL, each with the customer registry), how dates are
stored, how a save carries the registry rows, how many customers load at once, the cached
current policy, and how a customer command saves (idempotency, lost races, policy catch-up).
The commands and queries themselves are in application.py.

Policy races: a command judges a customer by the policy current when it starts. If a new
policy commits before the command does, the recomputation may already have passed that
customer, so after saving, the command looks at the policy again and, if it moved, refreshes
the customer under the new one (`_catch_up`). Either the recomputation sees the command's
save (it starts after the policy commits), or the command sees the new policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from itertools import groupby
from typing import Any, cast
from uuid import UUID

from crm_platform.actors import Actor, Clock, system_clock
from crm_platform.eventsourcing_internals import NotifiesSaves, save_unchecked
from crm_platform.idempotency import IdempotencyKey, IdempotencyRecord
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Recording,
    Transcoding,
)
from eventsourcing.utils import Environment, get_topic

from segmentation.domain import Customer
from segmentation.policy import DEFAULT_POLICY, POLICY_BOOK_ID, AdoptedPolicy, PolicyBook
from segmentation.recompute import Recomputation
from segmentation.recorders import PostgresSegmentationRecorder, SQLiteSegmentationRecorder
from segmentation.registry import REGISTRY_ROWS, RowValues
from segmentation.rules import (
    DomainError,
    Forbidden,
    LostRace,
    NotFound,
    SegmentReason,
    StaleVersion,
    local_date,
)
from segmentation.views import Outcome

log = logging.getLogger(__name__)

CATCH_UP_ATTEMPTS = 5


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class SegmentationStore(NotifiesSaves[UUID]):
    """Base of `SegmentationApplication`: storage concerns only."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock = system_clock,
        on_saved: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(dict(env) if env is not None else None)
        self.clock = clock
        self.on_saved = on_saved
        self._policy_cache: tuple[int, AdoptedPolicy] | None = None

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        environment = super().construct_env(name, env)
        module = environment.get("PERSISTENCE_MODULE", "")
        recorder = {
            "eventsourcing.sqlite": SQLiteSegmentationRecorder,
            "eventsourcing.postgres": PostgresSegmentationRecorder,
        }.get(module)
        if recorder is None:
            raise ValueError(f"segmentation runs on SQLite or PostgreSQL, not {module!r}")
        environment["APPLICATION_RECORDER_TOPIC"] = get_topic(recorder)
        return environment

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    @property
    def registry(self) -> SQLiteSegmentationRecorder | PostgresSegmentationRecorder:
        return cast(SQLiteSegmentationRecorder | PostgresSegmentationRecorder, self.recorder)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save, writing each changed customer's registry row in the same transaction."""
        rows = [RowValues.of(o) for o in objs if isinstance(o, Customer) and o.pending_events]
        if rows:
            kwargs[REGISTRY_ROWS] = rows
        return save_unchecked(self, objs, **kwargs)

    def current_policy(self) -> AdoptedPolicy:
        """The policy in force. Cached; one cheap query checks the book for a newer version."""
        cached = self._policy_cache
        known = cached[0] if cached else 0
        if cached is not None and not self.recorder.select_events(
            POLICY_BOOK_ID, gt=known, limit=1
        ):
            return cached[1]
        book = self._book()
        adopted = book.current if book else AdoptedPolicy(DEFAULT_POLICY)
        self._policy_cache = (book.version if book else 0, adopted)
        return adopted

    def recomputation(self, recomputation_id: UUID) -> Recomputation:
        found = self._get(recomputation_id)
        if not isinstance(found, Recomputation):
            raise NotFound(f"no recomputation {recomputation_id}")
        return found

    def existing_customer_ids(self, customer_ids: Sequence[str]) -> set[str]:
        """Which of these external ids are registered already (an import skips them)."""
        ids = [Customer.id_for(c) for c in customer_ids]
        found = self.registry.known_ids(ids)
        return {c for c, i in zip(customer_ids, ids, strict=True) if i in found}

    def rebuild_registry(self, batch_size: int = 1000) -> int:
        """Rewrite every customer's registry row from its events, e.g. after a column was
        added. Safe while commands run: a row is never replaced by an older version."""
        topics, start, count = [get_topic(Customer.Registered)], 1, 0
        while page := self.recorder.select_notifications(start, batch_size, topics=topics):
            customers = self.load_customers([UUID(str(n.originator_id)) for n in page])
            # No events, just rows: the recorder's transaction runs the upsert alone.
            self.recorder.insert_events([], **{REGISTRY_ROWS: [RowValues.of(c) for c in customers]})
            count, start = count + len(customers), page[-1].id + 1
        return count

    def load_customers(self, ids: Sequence[UUID]) -> list[Customer]:
        """Many customers from their events, a few queries for all (recomputation, calendar)."""
        if not ids:
            return []
        events = map(self.mapper.to_domain_event, self.registry.select_events_for(ids))
        customers: list[Customer] = []
        for _, stream in groupby(events, key=lambda e: e.originator_id):
            # eventsourcing's project_aggregate checks a runtime Protocol per event, which
            # costs more than the mutation itself; these events are ours, so fold directly.
            aggregate: Any = None
            for event in stream:
                aggregate = cast(Any, event).mutate(aggregate)
            if isinstance(aggregate, Customer):
                customers.append(aggregate)
        return customers

    def restore_customers(self, rows: Sequence[RowValues]) -> list[Customer]:
        """Customers from their registry rows: their snapshots, written in the same
        transaction as their events (registry.py), so no event needs replaying."""
        return [row.restore() for row in rows]

    def _book(self) -> PolicyBook | None:
        found = self._get(POLICY_BOOK_ID)
        return found if isinstance(found, PolicyBook) else None

    def _get(self, aggregate_id: UUID, version: int | None = None) -> object:
        try:
            return self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            return None

    def _idempotency_record(self, key: IdempotencyKey) -> IdempotencyRecord | None:
        found = self._get(key.record_id)
        if not isinstance(found, IdempotencyRecord):
            return None
        found.check(key)
        return found

    # -- command helpers ------------------------------------------------------------------------

    def _customer(self, customer_id: str, version: int | None = None) -> Customer:
        found = self._get(Customer.id_for(customer_id), version)
        if not isinstance(found, Customer):
            raise NotFound(f"no customer {customer_id}")
        return found

    def _for_change(self, customer_id: str, expected_version: int | None) -> Customer:
        customer = self._customer(customer_id)
        self._require_version(customer, expected_version)
        return customer

    @staticmethod
    def _require_version(customer: Customer, expected_version: int | None) -> None:
        if expected_version is not None and expected_version != customer.version:
            raise StaleVersion(
                f"the customer is at version {customer.version}, not {expected_version}; "
                "read it again",
                current_version=customer.version,
            )

    def _require_manager(self, actor: Actor, action: str) -> None:
        if not (actor.is_manager or actor.is_service):
            raise Forbidden(f"only a sales manager may {action}")

    def _replay(self, key: IdempotencyKey | None) -> Outcome | None:
        record = self._idempotency_record(key) if key is not None else None
        if record is None:
            return None
        customer: Customer = self.repository.get(
            record.resource_id, version=record.resource_version
        )
        return Outcome(customer, record.status, replayed=True)

    def _save(
        self,
        customer: Customer,
        adopted: AdoptedPolicy | None,
        idempotency: IdempotencyKey | None,
        *,
        status: int = 200,
        creating: bool = False,
    ) -> Outcome:
        items: list[Aggregate] = [customer]
        if idempotency is not None:
            items.append(
                IdempotencyRecord.record(
                    idempotency, customer.id, customer.version, status, self.clock()
                )
            )
        try:
            self.save(*items)
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


def exists(customer_id: str, how: str = "already") -> DomainError:
    return DomainError(
        "customer_exists",
        f"customer {customer_id} is {how} registered"
        if how == "already"
        else f"customer {customer_id} appears {how}",
        kind="conflict",
        details={"customer_id": customer_id},
    )
