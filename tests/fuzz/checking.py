"""Every distinct check failure of a test, not only the first.

Left alone, a failing check raises, Hypothesis stops exploring the operation and shrinks that
one example: a 422 for an empty `Idempotency-Key` would hide every other failure of the same
operation until it is fixed. Here each example's failures are recorded instead, and the test
fails at its end with every distinct one, each with the response and a curl line to reproduce
it (schemathesis's own report of the first example that showed it).

Distinct is schemathesis's identity for a failure (its kind, the operation, the check's key),
made finer where that is one per operation: a rejected valid request or a server error is told
apart by status, problem `code` and the first field the problem names; an accepted invalid
request by what was made invalid (coverage scenario, parameter and its location).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis.core.failures import Failure, FailureGroup

# Failures schemathesis keys once per operation although their causes differ per request.
_BY_RESPONSE = {"RejectedPositiveData", "ServerError", "UndefinedStatusCode", "JsonSchemaError"}
_BY_MUTATION = {"AcceptedNegativeData"}


@dataclass
class Seen:
    failure: Failure
    key: tuple[Any, ...]
    report: str  # schemathesis's report of the first example: failures, response, curl
    times: int = 1


@dataclass
class Findings:
    seen: dict[tuple[Any, ...], Seen] = field(default_factory=dict)
    examples: int = 0

    def add(self, case: schemathesis.Case, response: Any, group: FailureGroup) -> None:
        for failure in group.exceptions:
            if accepted_refusal(response, failure):
                continue
            key = failure_key(case, response, failure)
            if key in self.seen:
                self.seen[key].times += 1
            else:
                self.seen[key] = Seen(failure, key, str(group.message))

    def report(self, name: str) -> str:
        lines = [f"{name}: {len(self.seen)} distinct failure(s) in {self.examples} example(s)"]
        ordered = sorted(self.seen.values(), key=lambda s: (s.failure.code, repr(s.key)))
        numbers: dict[str, list[int]] = {}
        for n, seen in enumerate(ordered, start=1):
            f = seen.failure
            detail = " ".join(str(part) for part in seen.key[3:] if part not in (None, ""))
            lines.append(f"  {n}. {f.operation}: {f.code} {f.title} [{detail}] (x{seen.times})")
            numbers.setdefault(seen.report, []).append(n)
        for report, ns in numbers.items():
            lines.append("")
            lines.append(f"--- {', '.join(map(str, ns))}: " + "-" * 60)
            lines.append(report.strip())
        return "\n".join(lines)


def accepted_refusal(response: Any, failure: Failure) -> bool:
    """A rejection of valid data with a problem code listed in schemas.ACCEPTED_REFUSALS."""
    from tests.fuzz.schemas import ACCEPTED_REFUSALS

    if type(failure).__name__ != "RejectedPositiveData" or not ACCEPTED_REFUSALS:
        return False
    code, _ = problem_of(response)
    return code in ACCEPTED_REFUSALS


def failure_key(case: schemathesis.Case, response: Any, failure: Failure) -> tuple[Any, ...]:
    base: tuple[Any, ...] = (type(failure).__name__, failure.operation, failure._unique_key)
    kind = type(failure).__name__
    if kind in _BY_RESPONSE:
        code, fields = problem_of(response)
        return (*base, response.status_code, code, fields)
    if kind in _BY_MUTATION:
        return (*base, response.status_code, *mutation_of(case))
    return base


def problem_of(response: Any) -> tuple[str | None, str]:
    """The problem's `code` and the first field it names, if the body is one of ours (the
    first only: a policy refused for its unknown members names random ones after it)."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    code = body.get("code") if isinstance(body.get("code"), str) else None
    if isinstance(body.get("field"), str):
        return code, body["field"]
    for error in body.get("errors") or []:
        if isinstance(error, dict) and isinstance(error.get("field"), str):
            return code, error["field"]
    return code, ""


def mutation_of(case: schemathesis.Case) -> tuple[str | None, str | None, str | None]:
    """What a negative case broke: (coverage scenario or phase, location, parameter)."""
    meta = case.meta
    if meta is None:
        return (None, None, None)
    data = meta.phase.data
    scenario = getattr(data, "scenario", None)
    label = str(scenario.value) if scenario is not None else str(meta.phase.name.value)
    location = getattr(data, "parameter_location", None)
    return (label, str(location) if location else None, getattr(data, "parameter", None))


_current: Findings | None = None


@contextmanager
def collecting() -> Iterator[Findings]:
    """Record the failures of `check` calls inside; the caller decides how to fail."""
    global _current
    previous, _current = _current, Findings()
    try:
        yield _current
    finally:
        _current = previous


def record(case: schemathesis.Case, response: Any, group: FailureGroup) -> None:
    """Keep `group`'s failures for the running test (raise it outside `collecting`)."""
    if _current is None:
        raise group
    _current.add(case, response, group)


def count_example() -> None:
    if _current is not None:
        _current.examples += 1


def check(case: schemathesis.Case) -> None:
    """Send the case and run every enabled check; failures are recorded (raised outside
    `collecting`)."""
    response = case.call()
    count_example()
    try:
        case.validate_response(response, transport_kwargs={})
    except FailureGroup as group:
        record(case, response, group)


def fail_if_any(findings: Findings, name: str) -> None:
    if findings.seen:
        pytest.fail(findings.report(name), pytrace=False)
