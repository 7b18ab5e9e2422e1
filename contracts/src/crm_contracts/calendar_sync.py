"""Calendar sync status published by calendar-sync on ``crm.calendar.sync.v1``."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from crm_contracts.base import Event
from crm_contracts.enums import SyncStatus
from crm_contracts.primitives import ExternalId, Mailbox, Reason, Version


class CalendarSyncStatus(Event):
    """Where an activity's calendar entry stands; keyed by ``activity_id``.

    ``version`` counts this sync record's own changes; ``activity_version`` says which
    version of the activity the entry reflects, so the activity side can tell a stale
    status from a current one.
    """

    ce_type: ClassVar[str] = "crm.calendar.sync_status.v1"

    activity_id: UUID
    mailbox: Mailbox = Field(description="The calendar owner's mailbox (e.g. their e-mail).")
    status: SyncStatus
    outlook_event_id: ExternalId | None = None
    activity_version: Version = Field(description="The activity version the entry reflects.")
    error: Reason | None = Field(default=None, description="Why the last attempt failed.")
