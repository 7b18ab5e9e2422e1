"""Reading an import's CSV: the header checked once, then each data row as its cells by name.

Both imports (customers, past activities) read the same way: a header line naming the
columns in any order (case and a spreadsheet's byte order mark ignored), rows streamed one at
a time (a large file never sits in memory), blank lines skipped, and a row with another number
of cells than the header reported rather than guessed at. What the cells must hold is each
import's own business.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from crm_platform.errors import DomainError

__all__ = ["BadFile", "CsvRow", "csv_rows"]


class BadFile(DomainError):
    """The file as a whole cannot be read (no header, missing columns): 422 `file`."""

    def __init__(self, message: str) -> None:
        super().__init__("file", message, field="body")


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int  # in the file; the header is line 1
    cells: dict[str, str]  # every required and optional column, stripped ("" when absent)
    width_problem: str | None  # the row has another number of cells than the header


def csv_rows(
    lines: Iterable[str], required: Sequence[str], optional: Sequence[str] = ()
) -> Iterator[CsvRow]:
    """The data rows of the file, in order; BadFile before the first if the header is wrong."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise BadFile("the file is empty; it needs a header line: " + ", ".join(required))
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise BadFile(f"the header lacks the column(s) {', '.join(missing)}")
    index = {c: names.index(c) for c in (*required, *optional) if c in names}
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue  # blank lines are not rows
        cells = {c: (record[i].strip() if i < len(record) else "") for c, i in index.items()}
        cells.update({c: "" for c in optional if c not in cells})
        width = (
            f"expected {len(names)} columns, found {len(record)}"
            if len(record) != len(names)
            else None
        )
        yield CsvRow(reader.line_num, cells, width)
