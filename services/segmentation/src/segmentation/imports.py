"""Bulk import of customers from CSV, streamed, validated row by row, written in batches.

The file's header names the columns `customer_id, name, cvr, owner, potential_dkk,
annual_agreement_from, annual_agreement_to` (any order; `cvr`, `owner`, the potential and the
agreement may be empty), and may name the optional columns `value_programme_starts_on`,
`value_programme_ends_on` (a membership of the customer value programme; without an end it is
open-ended) and `segment_since` (going live: the segment the row leaves the customer in counts
as held since that day, so this year's targets are pro-rated from it, not from the import).
Rows are read one at a time (`csv.reader` over any line iterator), so a large file never sits
in memory; only the ids seen so far are kept, to find duplicates.

What a row does (decided here; the guide is silent):
- Bad rows are reported with their line number and every reason found, and skipped; the good
  rows are imported anyway. A `customer_id` is required: without it a second import of the
  same file could not recognise the customer and would register it twice.
- An id seen earlier in the same file is a bad row (the first occurrence is imported).
- A new customer is registered with its potential (source `import`) and agreement, in batches
  through `SegmentationApplication.new_customer` (once per row) and `save_new_customers`:
  one transaction per batch, so a batch is written whole or not at all.
- A registered customer whose row matches what is on record is `unchanged`: no event, which
  is what makes importing the same file twice a no-op. A row that differs updates the name,
  owner, potential and agreement it gives; an empty cell leaves that attribute as it is (an
  import never erases). The CVR cannot be changed by an import (there is no such command):
  a differing CVR rejects the row. The updates of a batch are saved in one transaction too.
- A value programme membership in a row replaces the dates on record, as
  `PUT .../value-programme` does. `segment_since` only moves the start of the current segment
  back (a later day than the one on record rejects the row); the same day changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import Final

from crm_platform.actors import Actor
from crm_platform.auth.principal import normalize_user_id
from crm_platform.csv_table import CsvRow, csv_rows
from crm_platform.errors import DomainError, Forbidden, LostRace
from crm_platform.values import check_day
from eventsourcing.persistence import IntegrityError
from pydantic_core import PydanticCustomError

from segmentation.application import NewCustomer, SegmentationApplication
from segmentation.domain import Customer
from segmentation.policy import AdoptedPolicy
from segmentation.rules import (
    Agreement,
    PotentialSource,
    ValueProgramme,
    require_cvr,
    require_id,
    require_name,
    require_owner,
    require_potential,
)

log = logging.getLogger(__name__)

COLUMNS: Final = (
    "customer_id",
    "name",
    "cvr",
    "owner",
    "potential_dkk",
    "annual_agreement_from",
    "annual_agreement_to",
)
OPTIONAL_COLUMNS: Final = ("value_programme_starts_on", "value_programme_ends_on", "segment_since")
BATCH_SIZE: Final = 500
SAVE_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    customer_id: str
    name: str
    cvr: str | None
    owner: str | None
    potential: Decimal | None
    agreement: Agreement | None
    value_programme: ValueProgramme | None = None
    segment_since: date | None = None


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    customer_id: str | None
    reasons: list[str]


@dataclass(slots=True)
class ImportResult:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowProblem] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.imported + self.updated + self.unchanged + len(self.rejected)


def read_rows(lines: Iterable[str]) -> Iterator[Row | RowProblem]:
    """Each data row of the CSV as a valid `Row` or a `RowProblem`, in file order."""
    seen: dict[str, int] = {}
    for row in csv_rows(lines, COLUMNS, OPTIONAL_COLUMNS):
        yield _validate(row, seen)


def _validate(row: CsvRow, seen: dict[str, int]) -> Row | RowProblem:
    cells, line = row.cells, row.line
    reasons = [row.width_problem] if row.width_problem else []

    def check(parse: Callable[[], str | None]) -> str | None:
        try:
            return parse()
        except DomainError as error:
            reasons.append(error.message)
            return None

    customer_id = cells["customer_id"] or None
    if customer_id is None:
        reasons.append("customer_id is missing")
    elif check(lambda: require_id(cells["customer_id"], "customer_id")) is not None:
        if customer_id in seen:
            first = seen[customer_id]
            reasons.append(f"customer_id appears twice in the file (first on line {first})")
        else:
            seen[customer_id] = line
    name = check(lambda: require_name(cells["name"])) if cells["name"] else None
    if not cells["name"]:
        reasons.append("name is missing")
    cvr = check(lambda: require_cvr(cells["cvr"]))
    owner = check(lambda: require_owner(cells["owner"])) if cells["owner"] else None
    potential = _potential(cells["potential_dkk"], reasons)
    agreement = _agreement(cells["annual_agreement_from"], cells["annual_agreement_to"], reasons)
    programme = _programme(
        cells["value_programme_starts_on"], cells["value_programme_ends_on"], reasons
    )
    since = _day("segment_since", cells["segment_since"], reasons)
    if reasons or customer_id is None or name is None:
        return RowProblem(line, customer_id, reasons)
    return Row(
        line,
        customer_id,
        name,
        cvr,
        normalize_user_id(owner) if owner else None,
        potential,
        agreement,
        programme,
        since,
    )


def _potential(text: str, reasons: list[str]) -> Decimal | None:
    if not text:
        return None
    try:
        Decimal(text)
    except InvalidOperation:
        reasons.append(f"potential_dkk {text[:40]!r} is not a number such as 390000.00")
        return None
    try:
        return require_potential(text)
    except DomainError as error:
        reasons.append(error.message)
        return None


def _day(column: str, text: str, reasons: list[str]) -> date | None:
    if not text:
        return None
    try:
        return check_day(date.fromisoformat(text))
    except (ValueError, PydanticCustomError):
        reasons.append(
            f"{column} {text[:40]!r} is not a date (YYYY-MM-DD) from 2000 to ten years ahead"
        )
        return None


def _agreement(starts: str, ends: str, reasons: list[str]) -> Agreement | None:
    if not starts and not ends:
        return None
    days: list[date | None] = []
    for column, text in (("annual_agreement_from", starts), ("annual_agreement_to", ends)):
        if not text:
            reasons.append(f"{column} is missing (an agreement needs both days)")
            days.append(None)
            continue
        days.append(_day(column, text, reasons))
    first, last = days
    if first is None or last is None:
        return None
    if first > last:
        reasons.append("annual_agreement_from is after annual_agreement_to")
        return None
    return Agreement(first, last)


def _programme(starts: str, ends: str, reasons: list[str]) -> ValueProgramme | None:
    if not starts and not ends:
        return None
    if not starts:
        reasons.append("value_programme_starts_on is missing (a membership needs its first day)")
    first = _day("value_programme_starts_on", starts, reasons)
    last = _day("value_programme_ends_on", ends, reasons)
    if first is None or (ends and last is None):
        return None
    if last is not None and last < first:
        reasons.append("value_programme_starts_on is after value_programme_ends_on")
        return None
    return ValueProgramme(first, last)


# -- writing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Judge:
    """What a batch is judged by: the policy in force, the time, who imports."""

    adopted: AdoptedPolicy
    now: datetime
    actor: str


class CustomerImport:
    """Imports rows for `actor` (a sales manager or a service) in batches of `batch_size`."""

    def __init__(
        self,
        app: SegmentationApplication,
        actor: Actor,
        *,
        batch_size: int = BATCH_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.app = app
        self.actor = actor
        self.batch_size = batch_size
        self._progress = progress

    def run(self, lines: Iterable[str]) -> ImportResult:
        if not (self.actor.is_manager or self.actor.is_service):
            raise Forbidden("only a sales manager may import customers")
        result = ImportResult()
        rows = read_rows(lines)
        while batch := list(islice(rows, self.batch_size)):
            good: list[Row] = []
            for item in batch:
                if isinstance(item, RowProblem):
                    result.rejected.append(item)
                else:
                    good.append(item)
            self._batch(good, result)
            if self._progress is not None:
                self._progress(len(batch))
        result.rejected.sort(key=lambda p: p.line)
        return result

    def _batch(self, rows: list[Row], result: ImportResult) -> None:
        pending = rows
        for _ in range(SAVE_ATTEMPTS):
            # One policy and one clock reading for the whole batch: consistent, and a query
            # per batch instead of two per row (they were most of an import's time).
            judge = _Judge(self.app.current_policy(), self.app.clock(), self.actor.user_id)
            known = self.app.existing_customer_ids([r.customer_id for r in pending])
            try:
                registered, problems = self._register(
                    [r for r in pending if r.customer_id not in known], judge
                )
            except LostRace:
                continue  # one of them was registered meanwhile: nothing was written; again
            result.imported += registered
            result.rejected.extend(problems)
            # Committed: a retry below must not see these rows again (they would count twice).
            pending = [r for r in pending if r.customer_id in known]
            try:
                self._update(pending, result, judge)
                return
            except LostRace:
                continue  # someone changed one of them meanwhile: nothing was written; again
        raise LostRace("customers kept changing while the import ran; import again", retry=True)

    def _register(self, rows: list[Row], judge: _Judge) -> tuple[int, list[RowProblem]]:
        """Register the new customers of a batch in one transaction (all or nothing).

        Each row's customer is built once, by the domain's own rules (e.g. an agreement
        that already ended is refused), so one such row cannot fail its whole batch."""
        built: list[Customer] = []
        problems: list[RowProblem] = []
        for row in rows:
            item = NewCustomer(
                name=row.name,
                customer_id=row.customer_id,
                cvr=row.cvr,
                owner=row.owner,
                potential=row.potential,
                source=PotentialSource.IMPORT,
                agreement_starts_on=row.agreement.starts_on if row.agreement else None,
                agreement_ends_on=row.agreement.ends_on if row.agreement else None,
                value_programme_starts_on=(
                    row.value_programme.starts_on if row.value_programme else None
                ),
                value_programme_ends_on=(
                    row.value_programme.ends_on if row.value_programme else None
                ),
                segment_since=row.segment_since,
            )
            try:
                built.append(self.app.new_customer(self.actor, item, judge.adopted, judge.now))
            except DomainError as error:
                problems.append(RowProblem(row.line, row.customer_id, [error.message]))
        if built:
            try:
                self.app.save_new_customers(self.actor, built, judge.adopted)
            except DomainError as error:
                if error.code == "customer_exists":
                    raise LostRace("registered meanwhile", retry=True) from None
                raise
        return len(built), problems

    def _apply(self, customer: Customer, row: Row, judge: _Judge) -> None:
        """Bring `customer` in line with `row` (only what the row gives and what differs)."""
        adopted, now, actor = judge.adopted, judge.now, judge.actor
        if row.name != customer.name:
            customer.rename(row.name, actor=actor, now=now)
        if row.owner is not None and row.owner != customer.owner:
            customer.change_owner(row.owner, actor=actor, now=now)
        if row.potential is not None and row.potential != customer.potential:
            customer.assess_potential(
                row.potential,
                assessed_at=now,
                source=PotentialSource.IMPORT,
                note=None,
                policy=adopted.policy,
                actor=actor,
                now=now,
            )
        if row.agreement is not None and row.agreement != customer.agreement:
            customer.start_agreement(
                row.agreement.starts_on,
                row.agreement.ends_on,
                policy=adopted.policy,
                actor=actor,
                now=now,
            )
        if row.value_programme is not None and row.value_programme != customer.value_programme:
            customer.set_value_programme(
                row.value_programme.starts_on,
                row.value_programme.ends_on,
                policy=adopted.policy,
                actor=actor,
                now=now,
            )
        if row.segment_since is not None:
            customer.hold_segment_since(row.segment_since, actor=actor, now=now)

    def _update(self, rows: list[Row], result: ImportResult, judge: _Judge) -> None:
        """Update the registered customers of a batch; save the changed ones together."""
        if not rows:
            return
        judged_by = judge.adopted.version
        ids = [Customer.id_for(r.customer_id) for r in rows]
        loaded = {c.customer_id: c for c in self.app.load_customers(ids)}
        changed: list[Customer] = []
        unchanged = 0
        problems: list[RowProblem] = []
        for row in rows:
            customer = loaded[row.customer_id]
            if row.cvr is not None and row.cvr != customer.cvr:
                why = "cvr differs from the registered one; an import cannot change a CVR"
                problems.append(RowProblem(row.line, row.customer_id, [why]))
                continue
            try:
                self._apply(customer, row, judge)
            except DomainError as error:
                # The customer is not saved, so the events it triggered so far are dropped.
                problems.append(RowProblem(row.line, row.customer_id, [error.message]))
                continue
            if customer.pending_events:
                changed.append(customer)
            else:
                unchanged += 1
        if changed:
            try:
                self.app.save(*changed)
            except IntegrityError:
                raise LostRace("changed meanwhile", retry=True) from None
            # The same catch-up every command does: a policy adopted while this batch was
            # judged may already have been recomputed past these customers.
            for customer in changed:
                self.app._catch_up(customer, judged_by)
        result.rejected.extend(problems)
        result.updated += len(changed)
        result.unchanged += unchanged
