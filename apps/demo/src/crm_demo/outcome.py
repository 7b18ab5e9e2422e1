"""What one step of the guide produced: the row of the table, and facts for tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class StepOutcome:
    step: int
    title: str
    rule: str
    expected: str
    happened: str
    ok: bool
    # Lines shown under the row (a small table of customers, feed entries, ...).
    detail: tuple[str, ...] = ()
    # Machine-readable results (rule codes, segments, ids) for tests; never printed.
    facts: Mapping[str, Any] = field(default_factory=dict)
