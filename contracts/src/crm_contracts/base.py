"""Base classes of every contract model.

Published models are frozen and forbid unknown fields: a typo at the producer must fail
before it reaches Kafka. Consumers must still tolerate fields added later within the same
``vN``; the codec gets that by validating with ``extra="ignore"`` (a per-call override
pydantic >= 2.12 offers), so the same class serves both sides and the strictness stays
where the message is built.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from crm_contracts.primitives import Id, UtcDateTime, Version


class ContractModel(BaseModel):
    """Any model that appears in a published payload, nested or not."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(ContractModel):
    """A top-level payload: one CloudEvent's data."""

    ce_type: ClassVar[str]
    """The CloudEvents ``type``: ``crm.<aggregate>.<event>.v<N>``."""

    version: Version
    actor: Id = Field(description="Id of the user (or system) that caused the change.")

    def event_time(self) -> datetime:
        """When the change happened; the codec's default ``ce_time``."""
        raise NotImplementedError


class Event(Message):
    """A fact that happened to an aggregate."""

    occurred_at: UtcDateTime = Field(description="When the change was recorded (UTC).")

    def event_time(self) -> datetime:
        return self.occurred_at
