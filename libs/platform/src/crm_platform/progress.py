"""A progress line for command-line imports: rows done, of how many, and the rate."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Written to `out` (stderr) at most ~5 times a second, and once at the end."""

    def __init__(self, total: int, out: TextIO | None = None) -> None:
        self.total, self.done = total, 0
        self._out = out or sys.stderr
        self._start = self._shown = time.monotonic()

    def __call__(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if now - self._shown >= 0.2 or self.done >= self.total:
            self._shown = now
            rate = self.done / max(now - self._start, 1e-6)
            share = 100 * self.done / self.total if self.total else 100.0
            self._out.write(
                f"\rimported {self.done}/{self.total} rows ({share:.0f}%, {rate:.0f}/s)"
            )
            self._out.flush()

    def close(self) -> None:
        self._out.write("\n")


def data_rows(path: str) -> int:
    """How many rows a CSV file has below its header (a first pass that only streams)."""
    with open(path, encoding="utf-8-sig", newline="") as lines:
        return max(sum(1 for _ in lines) - 1, 0)
