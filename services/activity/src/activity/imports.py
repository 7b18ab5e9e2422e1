"""Going live: the previous CRM's held activities from CSV, streamed, checked row by row.

The header names the columns `external_id, customer_id, owner, type, channel, held_at, note`
and optionally `subject` (any order). `external_id` is the activity's id in the previous
system: importing a file twice adds nothing the second time. `type` and `channel` are the
codes (`status_meeting`, `physical`, …) or their Danish labels (`Statusmøde`, `Fysisk`).
`held_at` is ISO 8601 with an offset, or a day (`2026-03-02`), read as noon in Copenhagen.

Rows are read one at a time, so a large file never sits in memory; a bad row is reported with
its line number and every reason found, and the good rows are imported anyway, in batches of
one transaction each. Imported activities count towards attainment and show in timelines
like registered ones; they never reach a calendar, and "not in the past" does not apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from itertools import islice
from typing import Final
from zoneinfo import ZoneInfo

from crm_contracts.enums import ActivityType, Channel
from crm_contracts.patterns import is_id, is_mailbox, is_text
from crm_contracts.primitives import ID_MAX, NOTE_MAX, SUBJECT_MAX
from crm_platform.actors import Actor
from crm_platform.auth.principal import normalize_user_id
from crm_platform.csv_table import CsvRow, csv_rows
from crm_platform.errors import Forbidden
from crm_platform.values import EARLIEST

from activity.application import ActivityApplication
from activity.domain import ImportedActivity

REQUIRED: Final = ("external_id", "customer_id", "owner", "type", "channel", "held_at", "note")
OPTIONAL: Final = ("subject",)
BATCH_SIZE: Final = 500
COPENHAGEN: Final = ZoneInfo("Europe/Copenhagen")
_TYPES: Final = {
    **{t.value: t for t in ActivityType},
    **{t.label.casefold(): t for t in ActivityType},
}
_CHANNELS: Final = {**{c.value: c for c in Channel}, **{c.label.casefold(): c for c in Channel}}


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    external_id: str | None
    reasons: list[str]


@dataclass(slots=True)
class ImportResult:
    imported: int = 0
    unchanged: int = 0  # imported by an earlier run of the same file
    rejected: list[RowProblem] = field(default_factory=list)


def read_rows(
    lines: Iterable[str], now: datetime
) -> Iterator[tuple[int, ImportedActivity | RowProblem]]:
    """Each data row as (line, a valid item or its problems), in file order."""
    seen: dict[str, int] = {}
    for row in csv_rows(lines, REQUIRED, OPTIONAL):
        yield row.line, _validate(row, seen, now)


def _validate(row: CsvRow, seen: dict[str, int], now: datetime) -> ImportedActivity | RowProblem:
    cells, line = row.cells, row.line
    reasons = [row.width_problem] if row.width_problem else []
    external_id = cells["external_id"]
    if not external_id or len(external_id) > ID_MAX or not is_id(external_id):
        reasons.append("external_id is missing or not an id (letters, digits, . _ ~ : @ + -)")
    elif external_id in seen:
        reasons.append(f"external_id appears twice in the file (first on line {seen[external_id]})")
    else:
        seen[external_id] = line
    customer_id = cells["customer_id"]
    if not customer_id or len(customer_id) > ID_MAX or not is_id(customer_id):
        reasons.append("customer_id is missing or not an id")
    owner = cells["owner"]
    if not owner or len(owner) > ID_MAX or not is_mailbox(owner):
        reasons.append("owner is missing or not an e-mail address")
    type_ = _TYPES.get(cells["type"].casefold())
    if type_ is None:
        reasons.append(
            f"type {cells['type'][:40]!r} is none of {', '.join(t.value for t in ActivityType)}"
        )
    channel = _CHANNELS.get(cells["channel"].casefold())
    if channel is None:
        reasons.append(
            f"channel {cells['channel'][:40]!r} is none of {', '.join(c.value for c in Channel)}"
        )
    held_at = _held_at(cells["held_at"], now, reasons)
    note = cells["note"]
    if not note or len(note) > NOTE_MAX or not is_text(note):
        reasons.append(
            f"note is missing, longer than {NOTE_MAX} characters or holds control characters"
        )
    subject = cells.get("subject") or None
    if subject is not None and (len(subject) > SUBJECT_MAX or not is_text(subject)):
        reasons.append(
            f"subject is longer than {SUBJECT_MAX} characters or holds control characters"
        )
    if reasons or type_ is None or channel is None or held_at is None:
        return RowProblem(line, external_id or None, reasons)
    return ImportedActivity(
        external_id=external_id,
        customer_id=customer_id,
        owner=normalize_user_id(owner),
        type=type_,
        channel=channel,
        held_at=held_at,
        note=note,
        subject=subject,
    )


def _held_at(text: str, now: datetime, reasons: list[str]) -> datetime | None:
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            moment = datetime.combine(day, time(12), COPENHAGEN).astimezone(UTC)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                raise ValueError("no offset")
    except ValueError:
        reasons.append(
            f"held_at {text[:40]!r} is not a day (2026-03-02) or a time with an offset "
            "(2026-03-02T10:00+01:00)"
        )
        return None
    if not EARLIEST <= moment <= now:
        reasons.append("held_at must be between 2000-01-01 and now: imports bring what was held")
        return None
    return moment


class ActivityImport:
    """Imports a file's rows for `actor` (a sales manager or a service) in batches."""

    def __init__(
        self,
        app: ActivityApplication,
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
            raise Forbidden("only a sales manager may import activities")
        result = ImportResult()
        rows = read_rows(lines, self.app.clock())
        while batch := list(islice(rows, self.batch_size)):
            good = [(line, item) for line, item in batch if isinstance(item, ImportedActivity)]
            result.rejected += [item for _, item in batch if isinstance(item, RowProblem)]
            imported, before, refused = self.app.import_history(
                self.actor, [item for _, item in good]
            )
            result.imported += imported
            result.unchanged += before
            result.rejected += [
                RowProblem(line, item.external_id, [refused[item.external_id]])
                for line, item in good
                if item.external_id in refused
            ]
            if self._progress is not None:
                self._progress(len(batch))
        result.rejected.sort(key=lambda p: p.line)
        return result
