"""The customer registry: one row per customer, written in the same transaction as its events.

Recomputing a million customers cannot replay a million event streams to find out who changes,
and "every customer" cannot be a single aggregate (every registration would contend on it).
So the application's recorder keeps a table beside the events with one row per customer,
upserted inside the very transaction that stores the customer's events: the `Application.save`
kwarg `registry_rows` travels through eventsourcing to `_insert_events`, the hook its process
recorders use to write tracking records (recorders.py). The row can never disagree with the
events: it is the customer's snapshot at `version`, in typed columns.

Its uses: find the customers a policy or the calendar may change, in SQL (`changed_between`,
`calendar_candidates`); restore those customers without replaying their events (`restore`,
what eventsourcing's own `Snapshot.mutate` does, from columns instead of JSON); list and find
customers (`list_customers`: by segment, owner, CVR, and the words of their names, kept folded
in `search_name` by `rules.search_text`).
The event store's optimistic concurrency still refuses a save based on anything stale, and
tests/integration/segmentation checks a restored customer equals the one its events give.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from crm_contracts.enums import Segment

from segmentation.domain import Customer
from segmentation.policy import THRESHOLD_SEGMENTS, Policy
from segmentation.rules import Agreement, ValueProgramme, search_text

REGISTRY_ROWS: Final = "registry_rows"
"""The `Application.save` keyword that carries the rows to upsert with the events."""
FOLDED_NAMES: Final = "folded_names"
"""A `SegmentationStore.save` keyword: names → their `search_text`, where already known."""

_AA: Final = Segment.ANNUAL_AGREEMENT.value


@dataclass(frozen=True, slots=True)
class RowValues:
    """A customer's registry row: every attribute of the aggregate (the seq is the database's)."""

    id: UUID
    customer_id: str
    version: int
    name: str
    cvr: str | None
    owner: str | None
    potential_cents: int | None  # exact, and fast to compare in both databases
    assessed_at: datetime | None
    potential_source: str | None
    agreement_starts_on: date | None
    agreement_ends_on: date | None
    value_programme_starts_on: date | None
    value_programme_ends_on: date | None  # None with a start: open-ended
    segment: str
    prioritized: bool
    segment_since: date
    policy_version: int
    created_on: datetime
    updated_at: datetime
    updated_by: str
    search_name: str | None  # the name's folded words (None: written before the column was)

    @classmethod
    def of(cls, customer: Customer, folded: Mapping[str, str] | None = None) -> RowValues:
        """The customer's row; `folded` may give names' `search_text` already known (a
        recomputation has them from the rows it restored; folding was an eighth of its CPU)."""
        agreement, programme = customer.agreement, customer.value_programme
        search_name = folded.get(customer.name) if folded else None
        return cls(
            id=customer.id,
            customer_id=customer.customer_id,
            version=customer.version,
            name=customer.name,
            cvr=customer.cvr,
            owner=customer.owner,
            potential_cents=None if customer.potential is None else int(customer.potential * 100),
            assessed_at=customer.assessed_at,
            potential_source=customer.potential_source,
            agreement_starts_on=agreement.starts_on if agreement else None,
            agreement_ends_on=agreement.ends_on if agreement else None,
            value_programme_starts_on=programme.starts_on if programme else None,
            value_programme_ends_on=programme.ends_on if programme else None,
            segment=customer.segment,
            prioritized=customer.prioritized,
            segment_since=customer.segment_since,
            policy_version=customer.policy_version,
            created_on=customer.created_on,
            updated_at=customer.modified_on,
            updated_by=customer.updated_by,
            search_name=search_text(customer.name) if search_name is None else search_name,
        )

    @property
    def potential(self) -> Decimal | None:
        return money_of(self.potential_cents)

    @property
    def agreement(self) -> Agreement | None:
        if self.agreement_starts_on is None or self.agreement_ends_on is None:
            return None
        return Agreement(self.agreement_starts_on, self.agreement_ends_on)

    @property
    def value_programme(self) -> ValueProgramme | None:
        if self.value_programme_starts_on is None:
            return None
        return ValueProgramme(self.value_programme_starts_on, self.value_programme_ends_on)

    def restore(self) -> Customer:
        """The customer at `version`, as eventsourcing's Snapshot.mutate builds one."""
        customer = object.__new__(Customer)
        customer.__dict__.update(
            _id=self.id,
            _version=self.version,
            _created_on=self.created_on,
            _modified_on=self.updated_at,
            _pending_events=[],
            customer_id=self.customer_id,
            name=self.name,
            cvr=self.cvr,
            owner=self.owner,
            segment=self.segment,
            prioritized=self.prioritized,
            segment_since=self.segment_since,
            policy_version=self.policy_version,
            potential=self.potential,
            assessed_at=self.assessed_at,
            potential_source=self.potential_source,
            agreement=self.agreement,
            value_programme=self.value_programme,
            updated_by=self.updated_by,
        )
        return customer


@dataclass(frozen=True, slots=True)
class RegistryRow(RowValues):
    seq: int  # registration order: recomputation and listings page by it


KINDS: Final[Mapping[str, str]] = {
    "id": "uuid",
    "customer_id": "text",
    "version": "int",
    "name": "text",
    "cvr": "text",
    "owner": "text",
    "potential_cents": "int",
    "assessed_at": "timestamp",
    "potential_source": "text",
    "agreement_starts_on": "date",
    "agreement_ends_on": "date",
    "value_programme_starts_on": "date",
    "value_programme_ends_on": "date",
    "segment": "text",
    "prioritized": "bool",
    "segment_since": "date",
    "policy_version": "int",
    "created_on": "timestamp",
    "updated_at": "timestamp",
    "updated_by": "text",
    "search_name": "text",
}
"""Each column's kind; each recorder says how its database stores a kind."""
ADDED: Final = ("value_programme_starts_on", "value_programme_ends_on", "search_name")
"""Columns added after the table was first created: a recorder adds them to an older table
(and fills `search_name`), so an existing database keeps working."""
NULLABLE: Final = frozenset(
    {"cvr", "owner", "potential_cents", "assessed_at", "potential_source"}
    | {"agreement_starts_on", "agreement_ends_on"}
    | set(ADDED)
)
assert tuple(KINDS) == tuple(f.name for f in fields(RowValues)), "KINDS lists every column"
COLUMNS: Final = ", ".join(f.name for f in fields(RowValues))
UPDATES: Final = ", ".join(f"{f.name} = excluded.{f.name}" for f in fields(RowValues)[1:])
NEWER: Final = "r.version <= excluded.version"
"""Never overwrite a row with an older state (only `rebuild_registry` could try)."""
# RegistryRow's field order (seq last), so a row can be built from a plain tuple.
_SELECT: Final = f"SELECT {COLUMNS}, seq FROM {{t}}"  # noqa: S608 (names are ours)
# In force on a day (each takes the day twice); never NULL, so NOT (...) means "neither".
_AGREEMENT_IN_FORCE: Final = (
    "(agreement_starts_on IS NOT NULL AND agreement_starts_on <= ? AND agreement_ends_on >= ?)"
)
_PROGRAMME_IN_FORCE: Final = (
    "(value_programme_starts_on IS NOT NULL AND value_programme_starts_on <= ?"
    " AND (value_programme_ends_on IS NULL OR value_programme_ends_on >= ?))"
)


class RegistryQueries:
    """The registry's queries, written once; subclasses say how their database spells them."""

    registry_table: str
    placeholder: str

    def _statement(self, template: str) -> str:
        return template.replace("{t}", self.registry_table).replace("?", self.placeholder)

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def _params(self, values: RowValues) -> tuple[Any, ...]:
        raise NotImplementedError

    def _row(self, record: Mapping[str, Any]) -> RegistryRow:
        raise NotImplementedError

    def _day(self, day: date) -> Any:
        raise NotImplementedError

    def _query(self, template: str, params: Sequence[Any]) -> list[RegistryRow]:
        with self._reading() as cursor:
            cursor.execute(self._statement(template), tuple(params))
            return [self._row(r) for r in cursor.fetchall()]

    def _scalar(self, template: str, params: Sequence[Any] = ()) -> int:
        with self._reading() as cursor:
            cursor.execute(self._statement(template), tuple(params))
            record = cursor.fetchone()
            value = next(iter(dict(record).values())) if record is not None else None
            return int(value or 0)

    def _upsert_statement(self) -> str:
        marks = ", ".join("?" for _ in COLUMNS.split(","))
        return self._statement(
            f"INSERT INTO {{t}} AS r ({COLUMNS}) VALUES ({marks})"  # noqa: S608
            f" ON CONFLICT (id) DO UPDATE SET {UPDATES} WHERE {NEWER}"
        )

    def _fill_search_names(self, cursor: Any) -> None:
        """Fill `search_name` where a table from before the column left it empty."""
        cursor.execute(self._statement("SELECT id, name FROM {t} WHERE search_name IS NULL"))
        rows = [(search_text(r["name"]), r["id"]) for r in cursor.fetchall()]
        if rows:
            cursor.executemany(self._statement("UPDATE {t} SET search_name = ? WHERE id = ?"), rows)

    def _upsert_params(self, kwargs: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        rows: Sequence[RowValues] = kwargs.get(REGISTRY_ROWS) or ()
        # One order for every writer, so two batches never wait on each other's rows in turn.
        return [self._params(v) for v in sorted(rows, key=lambda v: v.id.int)]  # as UUID orders

    # -- queries --------------------------------------------------------------------------

    def registry_rows(self, *, after: int, stop: int | None, limit: int) -> list[RegistryRow]:
        """Rows with `after < seq <= stop` in seq order (stop None: to the end)."""
        if stop is None:
            return self._query(f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        return self._query(
            f"{_SELECT} WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?", (after, stop, limit)
        )

    def page(self, *, after: int, stop: int | None, limit: int) -> tuple[int, int]:
        """The last seq and the row count of the next page of at most `limit` rows."""
        bound, params = (
            ("", [after, limit]) if stop is None else (" AND seq <= ?", [after, stop, limit])
        )
        with self._reading() as cursor:
            cursor.execute(
                self._statement(
                    "SELECT MAX(seq) AS last, COUNT(*) AS n FROM (SELECT seq FROM {t}"  # noqa: S608
                    f" WHERE seq > ?{bound} ORDER BY seq LIMIT ?) page"
                ),
                tuple(params),
            )
            record = cursor.fetchone()
        return int(record["last"] or after), int(record["n"] or 0)

    def changed_between(
        self, *, after: int, upto: int, policy: Policy, today: date
    ) -> list[RegistryRow]:
        """The customers with `after < seq <= upto` whom `policy` would give another segment
        or prioritized flag on `today`, in seq order.

        The same decision as `Policy.segment_for`, in SQL so a recomputation's scan costs
        what an `UPDATE ... CASE` costs; only the customers it names are restored and judged
        again by the aggregate. tests/integration/segmentation checks the two agree.
        """
        cents = [int(policy.thresholds[s] * 100) for s in THRESHOLD_SEGMENTS]
        prioritized = sorted(s.value for s in policy.prioritized) or [""]
        marks = ", ".join("?" for _ in prioritized)
        target = (
            f"CASE WHEN {_AGREEMENT_IN_FORCE} OR {_PROGRAMME_IN_FORCE} THEN '{_AA}'"
            f" WHEN potential_cents IS NULL THEN '{Segment.UNSEGMENTED.value}'"
            " WHEN potential_cents >= ? THEN 'A' WHEN potential_cents >= ? THEN 'B'"
            " WHEN potential_cents >= ? THEN 'C' ELSE 'D' END"
        )
        day = self._day(today)
        return self._query(
            f"SELECT {COLUMNS}, seq FROM (SELECT *, {target} AS target"  # noqa: S608
            " FROM {t} WHERE seq > ? AND seq <= ?) page"
            f" WHERE target <> segment OR (target IN ({marks})) <> prioritized ORDER BY seq",
            (day, day, day, day, *cents, after, upto, *prioritized),
        )

    def known_ids(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of these customer ids are registered."""
        found: set[UUID] = set()
        for start in range(0, len(ids), 500):
            chunk = [self._id(i) for i in ids[start : start + 500]]
            marks = ", ".join("?" for _ in chunk)
            found.update(r.id for r in self._query(f"{_SELECT} WHERE id IN ({marks})", chunk))
        return found

    def registry_max_seq(self) -> int:
        return self._scalar("SELECT MAX(seq) AS m FROM {t}")

    def registry_count(self, *, stop: int | None = None) -> int:
        if stop is None:
            return self._scalar("SELECT COUNT(*) AS n FROM {t}")
        return self._scalar("SELECT COUNT(*) AS n FROM {t} WHERE seq <= ?", (stop,))

    def registry_row(self, customer_id: str) -> RegistryRow | None:
        rows = self._query(f"{_SELECT} WHERE id = ?", (self._id(Customer.id_for(customer_id)),))
        return rows[0] if rows else None

    def calendar_candidates(self, today: date) -> list[RegistryRow]:
        """Customers whose agreement or value programme membership is in force today but who
        are not yet in `annual_agreement`, and those in it with neither in force today."""
        day = self._day(today)
        by_agreement = self._query(
            f"{_SELECT} WHERE agreement_ends_on >= ? AND agreement_starts_on <= ? AND segment <> ?",
            (day, day, _AA),
        )
        by_programme = self._query(
            f"{_SELECT} WHERE value_programme_starts_on <= ?"
            " AND (value_programme_ends_on IS NULL OR value_programme_ends_on >= ?)"
            " AND segment <> ?",
            (day, day, _AA),
        )
        ending = self._query(
            f"{_SELECT} WHERE segment = ? AND NOT ({_AGREEMENT_IN_FORCE} OR {_PROGRAMME_IN_FORCE})",
            (_AA, day, day, day, day),
        )
        found = {r.seq: r for r in (*by_agreement, *by_programme, *ending)}
        return [found[seq] for seq in sorted(found)]

    def list_customers(
        self,
        *,
        segment: str | None = None,
        owner: str | None = None,
        cvr: str | None = None,
        words: Sequence[str] = (),
        after: int = 0,
        limit: int = 100,
    ) -> list[RegistryRow]:
        """A page of customers in registration order; continue with `after=<last seq>`.

        `words` are folded (`rules.search_words`); each must begin a word of the name."""
        where: list[str] = ["seq > ?"]
        params: list[Any] = [after]
        if segment is not None:
            where.append("segment = ?")
            params.append(segment)
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if cvr is not None:
            where.append("cvr = ?")
            params.append(cvr)
        for word in words:
            # Folded words are letters and digits only: nothing in them is a LIKE wildcard.
            where.append("search_name LIKE ?")
            params.append(f"% {word}%")
        params.append(limit)
        return self._query(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?", params)

    def _id(self, value: UUID) -> Any:
        raise NotImplementedError


def date_of(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def money_of(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents).scaleb(-2)
