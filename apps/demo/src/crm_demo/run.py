"""What the steps of one run share: the API, the run's ids and what earlier steps made."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm_demo.client import Api
from crm_demo.timing import COPENHAGEN, now


class Skipped(RuntimeError):
    """A step needs what an earlier step failed to make."""


@dataclass(frozen=True, slots=True)
class Customer:
    key: str  # A, B, C, D or AG (the annual-agreement customer)
    customer_id: str
    name: str
    potential: str
    segment: str  # what the guide says it must be
    prioritized: bool


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    happened: str
    detail: tuple[str, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)


def run_id(moment: datetime | None = None) -> str:
    """`demo-20261129T1840-3fa2`: unique per run, so a rerun never meets its own customers."""
    stamp = (moment or now()).astimezone(COPENHAGEN).strftime("%Y%m%dT%H%M%S")
    return f"demo-{stamp}-{secrets.token_hex(2)}"


@dataclass
class Run:
    api: Api
    wait_s: float
    run: str = field(default_factory=run_id)
    customers: dict[str, Customer] = field(default_factory=dict)
    # Activities made so far, by role in the story (e.g. "status_A"): the API's JSON.
    activities: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Segment code → the Danish label the segmentation API gave it.
    segment_labels: dict[str, str] = field(default_factory=dict)

    def segment_label(self, code: str) -> str:
        return self.segment_labels.get(code, code)

    def customer(self, key: str) -> Customer:
        if key not in self.customers:
            raise Skipped(f"customer {key} was not imported (step 1 failed)")
        return self.customers[key]

    def activity(self, role: str) -> dict[str, Any]:
        if role not in self.activities:
            raise Skipped(f"the {role.replace('_', ' ')} activity is missing (an earlier step)")
        return self.activities[role]


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    title: str
    rule: str
    expected: str
    play: Callable[[Run], Result]
