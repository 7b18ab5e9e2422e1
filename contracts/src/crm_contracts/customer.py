"""The customer snapshot published on the compacted topic ``crm.customers.v1``.

Each record is the customer's complete current state, keyed by ``customer_id``, so a new
consumer can rebuild its customer directory by reading the topic from the start; compaction
keeps only the latest snapshot per key. A record whose value is null (a Kafka tombstone;
``WireMessage.value == b""`` here) means the customer was deleted. We may never emit one, but
consumers must handle it: see ``crm_contracts.cloudevents.is_tombstone``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Self

from pydantic import Field, model_validator

from crm_contracts.base import ContractModel, Message
from crm_contracts.enums import Segment
from crm_contracts.primitives import Cvr, Id, Money, Name, UserId, UtcDateTime


class AnnualAgreement(ContractModel):
    """An annual agreement; while it runs it overrides the potential-based segment."""

    starts_on: date
    ends_on: date = Field(description="Last day the agreement is in force (inclusive).")

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.ends_on < self.starts_on:
            raise ValueError("annual agreement: ends_on must not be before starts_on")
        return self


class ValueProgramme(ContractModel):
    """Membership of the customer value programme ("kundeværdiprogram"); while it runs it puts
    the customer in `annual_agreement`, exactly as an annual agreement does."""

    starts_on: date
    ends_on: date | None = Field(
        default=None,
        description="Last day of the membership (inclusive); null: open-ended.",
    )

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("value programme: ends_on must not be before starts_on")
        return self


class CustomerSnapshot(Message):
    """The customer's current state, including its segment and prioritized flag."""

    ce_type: ClassVar[str] = "crm.customer.snapshot.v1"

    customer_id: Id
    name: Name
    cvr: Cvr | None = None
    owner: UserId | None = Field(default=None, description="The responsible consultant, if any.")
    potential_dkk: Money | None = Field(
        default=None, description="Assessed annual potential; null means not yet assessed."
    )
    segment: Segment
    prioritized: bool = Field(description="Must always have a future activity (R8).")
    annual_agreement: AnnualAgreement | None = None
    value_programme: ValueProgramme | None = Field(
        default=None, description="Membership of the customer value programme, if any."
    )
    updated_at: UtcDateTime = Field(description="When this state was reached (UTC).")

    def event_time(self) -> datetime:
        return self.updated_at
