"""The storage plumbing of the segmentation application: how and where it keeps its events.

Which recorder (SQLite or PostgreSQL, each with the customer registry), how dates are
stored, how a save writes the changed customers' registry rows in the same transaction, the
cached current policy, and how many customers load at once (from their events or their
registry rows). The commands and queries are in application.py, which builds on this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from itertools import groupby
from typing import Any, cast
from uuid import UUID

from crm_platform.eventsourcing_internals import NotifiesSaves, save_unchecked
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import JSONTranscoder, Recording, Transcoding
from eventsourcing.utils import Environment, get_topic

from segmentation.domain import Customer
from segmentation.policy import DEFAULT_POLICY, POLICY_BOOK_ID, AdoptedPolicy, PolicyBook
from segmentation.recorders import PostgresSegmentationRecorder, SQLiteSegmentationRecorder
from segmentation.registry import FOLDED_NAMES, REGISTRY_ROWS, RowValues


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
        on_saved: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(dict(env) if env is not None else None)
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
        folded = kwargs.pop(FOLDED_NAMES, None)
        rows = [
            RowValues.of(o, folded) for o in objs if isinstance(o, Customer) and o.pending_events
        ]
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
