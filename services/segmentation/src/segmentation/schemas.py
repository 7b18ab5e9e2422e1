"""Request and response bodies of the segmentation API (pydantic), with explicit limits.

Money travels as a string with two decimals ("390000.00"): JSON numbers are floats to most
clients, and a potential must stay exact (docs/domain.md: money is exact). Times leave as
UTC with `Z` (`UtcInstant`); days as YYYY-MM-DD.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from crm_contracts.enums import Segment
from crm_contracts.primitives import Id as CustomerId
from crm_contracts.primitives import Name, UserId, text
from crm_platform.values import Day, MoneyIn, UtcInstant
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from segmentation.domain import Customer
from segmentation.recompute import Recomputation
from segmentation.registry import RowValues
from segmentation.rules import NOTE_MAX, PotentialSource

Cvr = Annotated[str, StringConstraints(pattern=r"^\d{8}$")]
Note = Annotated[str, text(NOTE_MAX)]
# Out: always a two-decimal string (in: `MoneyIn`, a decimal string, never a number).
MoneyOut = Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(Body):
    customer_id: CustomerId | None = Field(
        default=None, description="Your id for the customer; default: a new uuid."
    )
    name: Name
    cvr: Cvr | None = Field(default=None, description="Danish CVR number: eight digits.")
    owner: UserId | None = Field(default=None, description="The responsible consultant.")
    potential_dkk: MoneyIn | None = Field(
        default=None, description='Annual potential in DKK, e.g. "390000.00" (managers only).'
    )


class PotentialIn(Body):
    amount_dkk: MoneyIn = Field(description='Annual potential in DKK, e.g. "390000.00".')
    source: PotentialSource = PotentialSource.MANUAL
    note: Note | None = None


class AgreementIn(Body):
    starts_on: Day
    ends_on: Day = Field(description="The last day the agreement is in force (inclusive).")


class ValueProgrammeIn(Body):
    starts_on: Day = Field(description="The first day of the membership.")
    ends_on: Day | None = Field(
        default=None,
        description="The last day of the membership (inclusive); absent or null: open-ended. "
        "Not before starts_on, nor before today.",
    )


class OwnerIn(Body):
    owner: UserId = Field(description="The responsible consultant, by e-mail address.")


class CustomerPatch(Body):
    name: Name = Field(description="The new name (the owner changes with PUT .../owner).")


class AgreementOut(BaseModel):
    starts_on: date
    ends_on: date


class ValueProgrammeOut(BaseModel):
    starts_on: date
    ends_on: date | None = Field(description="Its last day (inclusive); null: open-ended.")


class CustomerOut(BaseModel):
    customer_id: str
    name: str
    cvr: str | None
    owner: str | None
    potential_dkk: MoneyOut | None
    potential_source: str | None
    assessed_at: UtcInstant | None
    segment: Segment
    segment_label: str
    segment_since: date
    prioritized: bool = Field(description="Must always have a future activity (R8).")
    annual_agreement: AgreementOut | None
    value_programme: ValueProgrammeOut | None = Field(
        description="Membership of the customer value programme (kundeværdiprogram): while "
        "it is in force the customer is in annual_agreement, as with an agreement."
    )
    policy_version: int = Field(description="The policy version the segment was judged by.")
    version: int
    updated_at: UtcInstant
    updated_by: str
    attainment: dict[str, Any] | None = Field(
        default=None, description="This year's meetings against the targets, when available."
    )

    @classmethod
    def of(cls, customer: Customer | RowValues) -> CustomerOut:
        agreement, programme = customer.agreement, customer.value_programme
        segment = Segment(customer.segment)
        return cls(
            customer_id=customer.customer_id,
            name=customer.name,
            cvr=customer.cvr,
            owner=customer.owner,
            potential_dkk=customer.potential,
            potential_source=customer.potential_source,
            assessed_at=customer.assessed_at,
            segment=segment,
            segment_label=segment.label,
            segment_since=customer.segment_since,
            prioritized=customer.prioritized,
            annual_agreement=(
                AgreementOut(starts_on=agreement.starts_on, ends_on=agreement.ends_on)
                if agreement is not None
                else None
            ),
            value_programme=(
                ValueProgrammeOut(starts_on=programme.starts_on, ends_on=programme.ends_on)
                if programme is not None
                else None
            ),
            policy_version=customer.policy_version,
            version=customer.version,
            updated_at=(
                customer.modified_on if isinstance(customer, Customer) else customer.updated_at
            ),
            updated_by=customer.updated_by,
        )


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: end.")


class HistoryEntry(BaseModel):
    version: int
    event: str = Field(description="What happened, e.g. `potential_assessed`.")
    at: UtcInstant = Field(description="When it was recorded (UTC).")
    actor: str | None = Field(description="Who did it.")
    why: str | None = Field(description="The reason or note, when one was given.")
    details: dict[str, Any] = Field(
        description="What the event recorded: amounts as decimal strings, times in UTC with "
        "`Z`, days as YYYY-MM-DD."
    )


class RecomputationOut(BaseModel):
    id: str
    policy_version: int
    state: str = Field(description="queued, running, done, failed or superseded.")
    total: int
    done: int
    changed: int
    effective_on: date
    started_at: UtcInstant | None
    finished_at: UtcInstant | None
    error: str | None
    superseded_by: str | None

    @classmethod
    def of(cls, job: Recomputation) -> RecomputationOut:
        return cls(
            id=str(job.id),
            policy_version=job.policy_version,
            state=job.state,
            total=job.total,
            done=job.done,
            changed=job.changed,
            effective_on=job.effective_on,
            started_at=job.started_at,
            finished_at=job.finished_at,
            error=job.error,
            superseded_by=str(job.superseded_by) if job.superseded_by else None,
        )


class PolicyAccepted(BaseModel):
    policy_version: int
    recomputation_id: str
    recomputation: RecomputationOut


class Rejected(BaseModel):
    line: int = Field(description="The line of the file (the header is line 1).")
    customer_id: str | None = None
    reasons: list[str]


class ImportOut(BaseModel):
    imported: int = Field(description="New customers registered.")
    updated: int = Field(description="Registered customers whose row changed something.")
    unchanged: int = Field(description="Rows identical to what is registered: no events.")
    rejected: list[Rejected]


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()
