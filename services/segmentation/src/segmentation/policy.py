"""The segmentation policy as data: thresholds, the targets table and the prioritized set.

A policy is a value; the `PolicyBook` aggregate (below) keeps its versions. Version 1 is
docs/domain.md's defaults. The JSON form below is what events store and what
`GET/PUT /segmentation/policy` carry:

    {"version": 1,
     "thresholds": {"A": "390000.00", "B": "140000.00", "C": "45000.00"},
     "targets": {"A": {"discovery_meeting": {"min": 1, "max": 1},
                       "proposal_meeting": {"min": 1, "max": 3}, ...}, ...},
     "prioritized": ["annual_agreement", "A", "B"]}

Thresholds are lower bounds, half-open: a potential >= A's threshold is A, else >= B's is
B, else >= C's is C, else D. `unsegmented` has no row in the targets table: a customer
without a potential gets no meeting targets (it needs a discovery meeting first).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from crm_contracts.enums import ActivityType, Segment
from crm_platform.errors import DomainError
from eventsourcing.domain import Aggregate

from segmentation.rules import local_date, require_potential

MEETING_TYPES: Final[tuple[ActivityType, ...]] = (
    ActivityType.DISCOVERY_MEETING,
    ActivityType.PROPOSAL_MEETING,
    ActivityType.STATUS_MEETING,
    ActivityType.SALES_MEETING,  # "agreed sales" in the guide
)
"""The meeting types with targets; contacts and unannounced visits are reported beside."""

TARGET_SEGMENTS: Final[tuple[Segment, ...]] = (
    Segment.ANNUAL_AGREEMENT,
    Segment.A,
    Segment.B,
    Segment.C,
    Segment.D,
)
THRESHOLD_SEGMENTS: Final[tuple[Segment, ...]] = (Segment.A, Segment.B, Segment.C)


@dataclass(frozen=True, slots=True)
class Band:
    """A yearly target band: below `min` is under, `min`..`max` on target, above is over."""

    min: int
    max: int

    def to_json(self) -> dict[str, int]:
        return {"min": self.min, "max": self.max}


NO_TARGET: Final = Band(0, 0)


@dataclass(frozen=True, eq=True)
class Policy:
    version: int
    thresholds: Mapping[Segment, Decimal]  # A, B, C: the lowest potential of each
    targets: Mapping[Segment, Mapping[ActivityType, Band]]
    prioritized: frozenset[Segment]

    def segment_for(self, potential: Decimal | None, agreement_active: bool) -> Segment:
        """docs/domain.md: an agreement (or a value programme membership) in force overrides;
        no potential is `unsegmented`."""
        if agreement_active:
            return Segment.ANNUAL_AGREEMENT
        if potential is None:
            return Segment.UNSEGMENTED
        for segment in THRESHOLD_SEGMENTS:
            if potential >= self.thresholds[segment]:
                return segment
        return Segment.D

    def is_prioritized(self, segment: Segment | str) -> bool:
        return Segment(segment) in self.prioritized

    def band(self, segment: Segment | str, meeting: ActivityType | str) -> Band:
        """The yearly band; `unsegmented` (and any type without targets) has none: 0-0."""
        row = self.targets.get(Segment(segment))
        if row is None:
            return NO_TARGET
        return row.get(ActivityType(meeting), NO_TARGET)

    def same_rules(self, other: Policy) -> bool:
        """Equal apart from the version number."""
        return (self.thresholds, self.targets, self.prioritized) == (
            other.thresholds,
            other.targets,
            other.prioritized,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "thresholds": {s.value: f"{self.thresholds[s]:.2f}" for s in THRESHOLD_SEGMENTS},
            "targets": {
                s.value: {m.value: self.targets[s][m].to_json() for m in MEETING_TYPES}
                for s in TARGET_SEGMENTS
            },
            "prioritized": [s.value for s in Segment if s in self.prioritized],
        }


def _band(low: int, high: int | None = None) -> Band:
    return Band(low, low if high is None else high)


DEFAULT_POLICY: Final = Policy(
    version=1,
    thresholds={
        Segment.A: Decimal("390000.00"),
        Segment.B: Decimal("140000.00"),
        Segment.C: Decimal("45000.00"),
    },
    # docs/domain.md "Recommended customer meetings per year": discovery, proposal, status, sales.
    targets={
        segment: dict(zip(MEETING_TYPES, bands, strict=True))
        for segment, bands in {
            Segment.ANNUAL_AGREEMENT: (_band(1), _band(1), _band(4, 6), _band(0)),
            Segment.A: (_band(1), _band(1, 3), _band(4, 6), _band(0)),
            Segment.B: (_band(1), _band(1, 2), _band(2), _band(1)),
            Segment.C: (_band(1), _band(1), _band(1), _band(2)),
            Segment.D: (_band(0), _band(0), _band(0), _band(2)),
        }.items()
    },
    prioritized=frozenset({Segment.ANNUAL_AGREEMENT, Segment.A, Segment.B}),
)


def parse_policy(data: Mapping[str, Any], *, version: int) -> Policy:
    """A policy from its JSON form, every problem reported at once (`details.errors`).

    The `version` in `data`, if any, is ignored: versions are assigned by the policy book.
    """
    problems: list[dict[str, str]] = []

    def problem(field: str, message: str) -> None:
        problems.append({"field": field, "message": message, "type": "invalid_policy"})

    if not isinstance(data, Mapping):
        raise DomainError("policy", "a policy is a JSON object")
    thresholds = _parse_thresholds(data.get("thresholds"), problem)
    targets = _parse_targets(data.get("targets"), problem)
    prioritized = _parse_prioritized(data.get("prioritized"), problem)
    extra = set(data) - {"version", "thresholds", "targets", "prioritized"}
    for name in sorted(extra):
        problem(name, "unknown field")
    if problems:
        raise DomainError(
            "policy",
            "the policy is invalid: "
            + "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5]),
            details={"errors": problems},
        )
    return Policy(version, thresholds, targets, prioritized)


def _parse_thresholds(raw: object, problem: Any) -> dict[Segment, Decimal]:
    if not isinstance(raw, Mapping):
        problem("thresholds", "an object with A, B and C")
        return {}
    parsed: dict[Segment, Decimal] = {}
    for segment in THRESHOLD_SEGMENTS:
        field = f"thresholds.{segment.value}"
        if segment.value not in raw:
            problem(field, "missing")
            continue
        try:
            parsed[segment] = require_potential(raw[segment.value])
        except DomainError as error:
            problem(field, error.message.replace("a potential", "a threshold"))
    for key in sorted(set(raw) - {s.value for s in THRESHOLD_SEGMENTS}):
        problem(f"thresholds.{key}", "only A, B and C have thresholds")
    if len(parsed) == len(THRESHOLD_SEGMENTS):
        a, b, c = (parsed[s] for s in THRESHOLD_SEGMENTS)
        if not a > b > c > 0:
            problem("thresholds", f"must fall strictly: A > B > C > 0 (got {a}, {b}, {c})")
    return parsed


def _parse_targets(raw: object, problem: Any) -> dict[Segment, dict[ActivityType, Band]]:
    if not isinstance(raw, Mapping):
        problem("targets", "an object with a row per segment")
        return {}
    table: dict[Segment, dict[ActivityType, Band]] = {}
    for key in sorted(set(raw) - {s.value for s in TARGET_SEGMENTS}):
        problem(f"targets.{key}", "no targets for this segment (unsegmented has none)")
    for segment in TARGET_SEGMENTS:
        row = raw.get(segment.value)
        if not isinstance(row, Mapping):
            problem(f"targets.{segment.value}", "missing: a band per meeting type")
            continue
        table[segment] = {}
        for key in sorted(set(row) - {m.value for m in MEETING_TYPES}):
            problem(f"targets.{segment.value}.{key}", "not a meeting type with targets")
        for meeting in MEETING_TYPES:
            band = _parse_band(row.get(meeting.value), f"targets.{segment.value}.{meeting.value}")
            if isinstance(band, str):
                problem(f"targets.{segment.value}.{meeting.value}", band)
            else:
                table[segment][meeting] = band
    return table


def _parse_band(raw: object, field: str) -> Band | str:
    if not isinstance(raw, Mapping) or set(raw) != {"min", "max"}:
        return 'a band {"min": n, "max": m}'
    low, high = raw["min"], raw["max"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        return "min and max are whole numbers of meetings"
    if low < 0 or high < 0:
        return "min and max must not be negative"
    if low > high:
        return f"min ({low}) must not exceed max ({high})"
    return Band(low, high)


def _parse_prioritized(raw: object, problem: Any) -> frozenset[Segment]:
    if not isinstance(raw, list | tuple) or not all(isinstance(s, str) for s in raw):
        problem("prioritized", "a list of segments")
        return frozenset()
    known = {s.value for s in Segment}
    unknown = [s for s in raw if s not in known]
    if unknown:
        problem("prioritized", f"unknown segments {unknown}; known are {sorted(known)}")
    return frozenset(Segment(s) for s in raw if s in known)


# -- the versioned policy book --------------------------------------------------------------

POLICY_BOOK_ID: Final = uuid.UUID("5e2d8c1a-7b3f-4f0e-a6d4-0c9b8e7f6a51")
"""The one policy book: a fixed id, so every process finds the same aggregate."""


@dataclass(frozen=True, slots=True)
class AdoptedPolicy:
    """A policy version and how it came into force (all None for the built-in version 1
    until the book is first written)."""

    policy: Policy
    adopted_at: datetime | None = None
    adopted_by: str | None = None
    effective_on: date | None = None
    recomputation_id: UUID | None = None

    @property
    def version(self) -> int:
        return self.policy.version

    def to_json(self) -> dict[str, Any]:
        return {
            **self.policy.to_json(),
            "adopted_at": self.adopted_at.isoformat() if self.adopted_at else None,
            "adopted_by": self.adopted_by,
            "effective_on": self.effective_on.isoformat() if self.effective_on else None,
            "recomputation_id": str(self.recomputation_id) if self.recomputation_id else None,
        }


class PolicyBook(Aggregate):
    """Every policy version ever adopted. The aggregate's version is the policy's version:
    version 1 is docs/domain.md's defaults, each revision adds one."""

    class Opened(Aggregate.Created):
        policy: dict[str, Any]
        actor: str

        def apply(self, aggregate: Any) -> None:
            adopted = AdoptedPolicy(
                parse_policy(self.policy, version=1),
                self.timestamp,
                self.actor,
                local_date(self.timestamp),
            )
            aggregate.entries = [adopted]

    class Revised(Aggregate.Event):
        policy: dict[str, Any]
        effective_on: date
        recomputation_id: UUID
        actor: str

        def apply(self, aggregate: Any) -> None:
            policy = parse_policy(self.policy, version=len(aggregate.entries) + 1)
            aggregate.entries.append(
                AdoptedPolicy(
                    policy, self.timestamp, self.actor, self.effective_on, self.recomputation_id
                )
            )

    def __init__(self, policy: dict[str, Any], actor: str) -> None:
        self.entries: list[AdoptedPolicy] = []

    @classmethod
    def open(cls, now: datetime, actor: str = "system") -> PolicyBook:
        return cls._create(
            cls.Opened,
            id=POLICY_BOOK_ID,
            timestamp=now,
            policy=DEFAULT_POLICY.to_json(),
            actor=actor,
        )

    @property
    def current(self) -> AdoptedPolicy:
        return self.entries[-1]

    def get(self, version: int) -> AdoptedPolicy | None:
        return self.entries[version - 1] if 1 <= version <= len(self.entries) else None

    def revise(
        self,
        policy: Policy,
        *,
        effective_on: date,
        recomputation_id: UUID,
        actor: str,
        now: datetime,
    ) -> AdoptedPolicy:
        if policy.version != self.current.version + 1:
            raise ValueError(f"the next policy is version {self.current.version + 1}")
        if policy.same_rules(self.current.policy):
            raise DomainError(
                "policy_unchanged",
                f"this policy is the same as the current version {self.current.version}",
                kind="conflict",
            )
        self.trigger_event(
            self.Revised,
            timestamp=now,
            policy=policy.to_json(),
            effective_on=effective_on,
            recomputation_id=recomputation_id,
            actor=actor,
        )
        return self.current
