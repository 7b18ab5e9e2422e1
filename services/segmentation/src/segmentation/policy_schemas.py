"""The request body of `PUT /segmentation/policy`: the policy's JSON form as the API takes it.

These models put in the OpenAPI document, and check at the door, what `policy.parse_policy`
checks member by member: every member required and no others (`additionalProperties: false`)
at each level, the thresholds of A, B and C as exact amounts in DKK (a decimal string,
`crm_platform.values.MoneyIn`, as every amount the APIs take), a band per segment and meeting
type as whole numbers of meetings (JSON Schema's `integer`: 2.0 is 2; "2" and true are not
numbers), the prioritized segments by name. A body that does not fit answers 422
`validation_error`, each problem in `errors` (`body.thresholds.A`, …).

What no schema can state stays with `parse_policy` and answers 422 `policy`, every problem in
`errors` (`{field, message, type: invalid_policy}`): the thresholds fall strictly
(A > B > C > 0), and no band's `min` exceeds its `max`.

The members GET adds (`version` and the adoption: `adopted_at`, `adopted_by`, `effective_on`,
`recomputation_id`) are accepted with any value and ignored, so a GET body can be PUT back.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from crm_contracts.enums import Segment
from crm_platform.values import MoneyIn
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

MAX_BAND: Final = 366
"""The most meetings a band may ask for in a year: one a day. (Far larger numbers would no
longer fit the attainment report's exact decimal arithmetic.)"""

ADOPTION_MEMBERS: Final = frozenset(
    {"adopted_at", "adopted_by", "effective_on", "recomputation_id"}
)
"""What GET adds about the adoption: not part of a policy, left out before it is parsed."""


def _whole_number(value: object) -> object:
    # JSON Schema's `integer` is a number without a fractional part: 2.0 is one, "2" is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The bounds before the validator: after it, pydantic writes them as `ge`/`le` into the schema.
Meetings = Annotated[StrictInt, Field(ge=0, le=MAX_BAND), BeforeValidator(_whole_number)]
Threshold = Annotated[MoneyIn, Field(description="The lowest potential of the segment, in DKK.")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BandIn(_Strict):
    """A yearly target band: fewer than `min` meetings is under target, more than `max` over."""

    min: Meetings = Field(description="Whole meetings per year; not above `max`.")
    max: Meetings = Field(description="Whole meetings per year; not below `min`.")


class MeetingTargetsIn(_Strict):
    """A segment's row of the targets table: a band per meeting type."""

    discovery_meeting: BandIn
    proposal_meeting: BandIn
    status_meeting: BandIn
    sales_meeting: BandIn = Field(description='"Agreed sales" in the sales guide.')


class TargetsIn(_Strict):
    """The targets table: a row per segment (`unsegmented` has none: no targets)."""

    annual_agreement: MeetingTargetsIn
    A: MeetingTargetsIn
    B: MeetingTargetsIn
    C: MeetingTargetsIn
    D: MeetingTargetsIn


class ThresholdsIn(_Strict):
    """The segments' lower bounds, half-open: a potential >= A's is A, else >= B's is B, else
    >= C's is C, else D. They fall strictly: A > B > C > 0."""

    A: Threshold
    B: Threshold
    C: Threshold


class PolicyIn(_Strict):
    """A new segmentation policy: thresholds, targets table and prioritized segments."""

    thresholds: ThresholdsIn
    targets: TargetsIn
    prioritized: list[Segment] = Field(
        description="The segments whose customers are prioritized (the sales guide's R8); "
        "may be empty."
    )
    version: Any = Field(default=None, description="Ignored: the server numbers versions.")
    adopted_at: Any = Field(default=None, description="Ignored (GET adds it).")
    adopted_by: Any = Field(default=None, description="Ignored (GET adds it).")
    effective_on: Any = Field(default=None, description="Ignored (GET adds it).")
    recomputation_id: Any = Field(default=None, description="Ignored (GET adds it).")

    def policy_json(self) -> dict[str, Any]:
        """The policy in the JSON form `parse_policy` reads (amounts as strings), with the
        members sent but the adoption's: also what an Idempotency-Key's fingerprint covers."""
        return self.model_dump(mode="json", exclude_unset=True, exclude=set(ADOPTION_MEMBERS))
