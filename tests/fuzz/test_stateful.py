"""Sequences of calls that feed each other, per service: schemathesis's stateful phase.

The documents declare no OpenAPI links; schemathesis infers them (a created activity's id
feeds move, complete, GET …), so scenarios reach existing resources, which single calls with
random ids rarely do, and checks such as use_after_free and ensure_resource_availability get
something to look at. calendar-sync has nothing to chain (its resources come from activity's
events), so it has no scenario of its own.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
from schemathesis.core.failures import FailureGroup

from tests.fuzz.checking import collecting, count_example, fail_if_any, record
from tests.fuzz.schemas import SCENARIO_STEPS, SCENARIOS, SCHEMAS

pytestmark = pytest.mark.fuzz


def machine(prefix: str) -> Any:
    base = SCHEMAS[prefix].as_state_machine()

    class Machine(base):  # type: ignore[misc, valid-type]
        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            count_example()
            try:
                super().validate_response(response, case, additional_checks, **kwargs)
            except FailureGroup as group:
                record(case, response, group)

    Machine.__name__ = f"{prefix.title().replace('-', '')}Machine"
    return Machine


@pytest.mark.parametrize("prefix", ["activity", "segmentation"])
def test_stateful(prefix: str) -> None:
    settings = hypothesis.settings(
        max_examples=SCENARIOS,
        stateful_step_count=SCENARIO_STEPS,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    with collecting() as findings:
        try:
            machine(prefix).run(settings=settings)
        except hypothesis.errors.FlakyStrategyDefinition:
            # What a step can draw depends on what earlier calls created, and the system's
            # threads (relays, consumers) make that vary between scenarios, so hypothesis may
            # stop generating. That is the harness, not the API: every response up to there
            # was checked (findings), and enough of them must have run to count.
            assert findings.examples >= SCENARIOS, (
                f"only {findings.examples} calls ran before generation diverged"
            )
            print(f"stateful {prefix}: generation diverged after {findings.examples} calls")
    fail_if_any(findings, f"stateful {prefix}")
