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
        description="CALENDAR_SYNC_MAX_ATTEMPTS: per message, before it is dead-lettered",
    )
