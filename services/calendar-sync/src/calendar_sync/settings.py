"""Settings of calendar-sync: which calendar, how cancellations show, where the feed lives.

Read once in the entry point and passed down. Microsoft Graph is used when `GRAPH_TENANT_ID`,
`GRAPH_CLIENT_ID` and `GRAPH_CLIENT_SECRET` are all set; otherwise the embedded iCalendar
feed is the calendar.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from calendar_sync.domain import CancelMode
from calendar_sync.graph import GRAPH_V1
from calendar_sync.graph_auth import DEFAULT_AUTHORITY_HOST


class GraphSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRAPH_", extra="ignore", frozen=True)

    tenant_id: str | None = Field(default=None, description="GRAPH_TENANT_ID")
    client_id: str | None = Field(default=None, description="GRAPH_CLIENT_ID")
    client_secret: SecretStr | None = Field(default=None, description="GRAPH_CLIENT_SECRET")
    base_url: str = Field(default=GRAPH_V1, description="GRAPH_BASE_URL")
    authority_host: str = Field(
        default=DEFAULT_AUTHORITY_HOST, description="GRAPH_AUTHORITY_HOST (MSAL, https only)"
    )
    token_url: str | None = Field(
        default=None,
        description="GRAPH_TOKEN_URL: fetch tokens with a plain client-credentials POST to "
        "this URL instead of MSAL (a local Graph stand-in; MSAL accepts https only).",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="GRAPH_TIMEOUT_SECONDS")
    max_attempts: int = Field(
        default=8, ge=1, description="GRAPH_MAX_ATTEMPTS: per request, throttling included"
    )
    inline_retry_after_seconds: float = Field(
        default=2.0,
        ge=0,
        description="GRAPH_INLINE_RETRY_AFTER_SECONDS: a Retry-After up to this is waited in "
        "place; a longer one pauses the mailbox's lane instead",
    )
    settle_seconds: float = Field(
        default=10.0,
        ge=0,
        description="GRAPH_SETTLE_SECONDS: after an uncertain create found nothing, wait this "
        "long and look again before creating with a new transactionId",
    )

    @property
    def configured(self) -> bool:
        return bool(self.tenant_id and self.client_id and self.client_secret)


class CalendarSyncSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALENDAR_SYNC_", extra="ignore", frozen=True)

    cancel_mode: CancelMode = Field(
        default=CancelMode.REMOVE,
        description="CALENDAR_SYNC_CANCEL_MODE: `remove` (default) or `mark`",
    )
    feed_base_url: str = Field(
        default="http://127.0.0.1:8003",
        description="CALENDAR_SYNC_FEED_BASE_URL: how subscribers reach this service",
    )
    consumers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="CALENDAR_SYNC_CONSUMERS: activity consumers per process (Kafka only; "
        "more than the topic's partitions sit idle)",
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        description="CALENDAR_SYNC_MAX_ATTEMPTS: per message, before it is dead-lettered "
        "(only messages that cannot be applied to the state: the calendar never fails one)",
    )
    lane_workers: int = Field(
        default=4,
        ge=1,
        le=64,
        description="CALENDAR_SYNC_LANE_WORKERS: mailbox lanes worked at once per process",
    )
    lane_linger_seconds: float = Field(
        default=2.0,
        ge=0,
        description="CALENDAR_SYNC_LANE_LINGER_SECONDS: a lane with nothing left to write is "
        "kept this long for the mailbox's next message (at most a third of the lease)",
    )
    lane_idle_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="CALENDAR_SYNC_LANE_IDLE_POLL_SECONDS: how often idle lanes ask the "
        "database for work nobody announced (timers, a lost notification)",
    )
    lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="CALENDAR_SYNC_LEASE_SECONDS: a lane whose holder died is free after this",
    )
    retry_after_cap_seconds: float = Field(
        default=600.0,
        gt=0,
        description="CALENDAR_SYNC_RETRY_AFTER_CAP_SECONDS: the longest Retry-After honoured",
    )
    unavailable_first_check_seconds: float = Field(
        default=300.0,
        gt=0,
        description="CALENDAR_SYNC_UNAVAILABLE_FIRST_CHECK_SECONDS: a mailbox that refuses us "
        "is looked at again after this, then after twice as long each time",
    )
    unavailable_max_check_seconds: float = Field(
        default=21_600.0,
        gt=0,
        description="CALENDAR_SYNC_UNAVAILABLE_MAX_CHECK_SECONDS: the slowest schedule",
    )
    request_budget: int = Field(
        default=9_500,
        ge=1,
        description="CALENDAR_SYNC_REQUEST_BUDGET: requests per mailbox per budget window "
        "(Outlook allows 10,000 per 10 minutes per app and mailbox)",
    )
    budget_window_seconds: float = Field(
        default=600.0, gt=0, description="CALENDAR_SYNC_BUDGET_WINDOW_SECONDS"
    )
    reconcile_days_back: int = Field(
        default=90,
        ge=0,
        description="CALENDAR_SYNC_RECONCILE_DAYS_BACK: reconciliation walks the calendar "
        "from this many days ago (entries before are checked one by one)",
    )
    reconcile_days_ahead: int = Field(
        default=400, ge=0, description="CALENDAR_SYNC_RECONCILE_DAYS_AHEAD: ... to this many ahead"
    )
