"""What the application takes and returns, and the customer's published snapshot.

Kept apart from the application so the API, the relay and the import (written elsewhere) can
use these types without pulling in the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from crm_contracts.customer import AnnualAgreement, CustomerSnapshot
from crm_contracts.enums import Segment

from segmentation.domain import Customer
from segmentation.policy import AdoptedPolicy
from segmentation.recompute import Recomputation
from segmentation.rules import PotentialSource


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a customer command produced; `replayed` when an Idempotency-Key repeated it."""

    customer: Customer
    status: int = 200
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    policy: AdoptedPolicy
    recomputation: Recomputation
    status: int = 201
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CustomerView:
    """A customer and the policy version in force (its segment is judged by that policy
    unless a recomputation is still on its way to it)."""

    customer: Customer
    policy_version: int

    @property
    def segment(self) -> Segment:
        return Segment(self.customer.segment)

    @property
    def prioritized(self) -> bool:
        return self.customer.prioritized

    @property
    def version(self) -> int:
        return self.customer.version


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """One customer of a bulk registration (imports), optionally with its potential."""

    name: str
    customer_id: str | None = None
    cvr: str | None = None
    owner: str | None = None
    potential: Decimal | None = None
    assessed_at: datetime | None = None
    note: str | None = None
    source: PotentialSource = PotentialSource.IMPORT
    # An annual agreement (both days inclusive) recorded in the same transaction (imports).
    agreement_starts_on: date | None = None
    agreement_ends_on: date | None = None


@dataclass(frozen=True, slots=True)
class CalendarResult:
    today: date
    checked: int
    changed: int


def snapshot(customer: Customer) -> CustomerSnapshot:
    """The customer's state as published (keyed by customer id) on `crm.customers.v1`."""
    agreement = customer.agreement
    return CustomerSnapshot(
        version=customer.version,
        actor=customer.updated_by,
        customer_id=customer.customer_id,
        name=customer.name,
        cvr=customer.cvr,
        owner=customer.owner,
        potential_dkk=customer.potential,
        segment=Segment(customer.segment),
        prioritized=customer.prioritized,
        annual_agreement=(
            AnnualAgreement(starts_on=agreement.starts_on, ends_on=agreement.ends_on)
            if agreement is not None
            else None
        ),
        updated_at=customer.modified_on,
    )
