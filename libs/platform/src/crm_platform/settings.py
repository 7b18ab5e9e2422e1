"""Settings every service shares: where its data lives and how it talks to the others.

Read once in an entry point and passed down; nothing reads the environment at import time.
With neither PostgreSQL nor Kafka configured a service runs embedded: SQLite files and the
in-process transport under `CRM_DATA_DIR`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_platform.eventstore import StoreLocation
from crm_platform.messaging.kafka import (
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
    GroupTimeouts,
)
from crm_platform.messaging.transport import InProcessTransport, KafkaTransport, Transport


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore", frozen=True)

    postgres_dsn: str | None = Field(
        default=None,
        description="CRM_POSTGRES_DSN: PostgreSQL for the event stores; "
        "each service uses its own schema. Unset: SQLite files under CRM_DATA_DIR.",
    )
    kafka_bootstrap: str | None = Field(
        default=None,
        description="CRM_KAFKA_BOOTSTRAP: Kafka brokers (host:port,…). "
        "Unset: the in-process transport.",
    )
    kafka_session_timeout_ms: int = Field(
        default=DEFAULT_SESSION_TIMEOUT_MS,
        ge=1000,
        description="CRM_KAFKA_SESSION_TIMEOUT_MS: how long a consumer may go without a "
        "heartbeat before its partitions go to the others (a crashed worker's partitions "
        "wait this long); within the broker's group.min.session.timeout.ms (default 6 s) and "
        "group.max.session.timeout.ms",
    )
    kafka_heartbeat_interval_ms: int = Field(
        default=DEFAULT_HEARTBEAT_INTERVAL_MS,
        ge=100,
        description="CRM_KAFKA_HEARTBEAT_INTERVAL_MS: how often a consumer tells the group it "
        "lives; shorter than the session timeout (a third of it, by custom)",
    )
    data_dir: Path = Field(default=Path(".data"), description="CRM_DATA_DIR")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="CRM_MAX_BODY_BYTES")
    pool_size: int = Field(default=10, ge=1, description="CRM_POOL_SIZE: PostgreSQL connections")
    schema_prefix: str = Field(
        default="",
        pattern=r"^[a-z0-9_]*$",
        description="CRM_SCHEMA_PREFIX: put before each service's schema and Kafka consumer "
        "group (one database and broker shared by several installations, or by test runs)",
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="CRM_TOPIC_PREFIX: put before every Kafka topic this installation publishes "
        "or consumes, e.g. `test.` on a broker shared with other environments; production "
        "leaves it empty, so the topics are the contracts' names",
    )

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> RuntimeSettings:
        self.kafka_group_timeouts()  # raises ValueError when the heartbeat is not shorter
        return self

    def kafka_group_timeouts(self) -> GroupTimeouts:
        return GroupTimeouts(
            session_timeout_ms=self.kafka_session_timeout_ms,
            heartbeat_interval_ms=self.kafka_heartbeat_interval_ms,
        )

    @property
    def production_settings_present(self) -> bool:
        return bool(self.postgres_dsn or self.kafka_bootstrap)

    def store(self, service: str) -> StoreLocation:
        """The service's event store: schema `service` in PostgreSQL, or `<service>.sqlite`."""
        if self.postgres_dsn:
            return StoreLocation(
                postgres_dsn=self.postgres_dsn,
                schema=f"{self.schema_prefix}{service}",
                pool_size=self.pool_size,
                max_overflow=self.pool_size,
            )
        return StoreLocation(sqlite_path=str(self.data_dir / f"{service}.sqlite"))

    def topic(self, name: str) -> str:
        """A contract topic as this installation names it on the broker."""
        return f"{self.topic_prefix}{name}"

    def consumer_group(self, name: str) -> str:
        """A consumer group of this installation: groups are per installation like schemas,
        or two installations on one broker would split each other's partitions."""
        return f"{self.schema_prefix}{name}"

    @property
    def transport_path(self) -> Path:
        """The in-process transport's log, shared by the services of one embedded process."""
        return self.data_dir / "transport.sqlite"

    def transport(self, client_id: str) -> Transport:
        """Kafka when brokers are configured, else the in-process log under CRM_DATA_DIR."""
        if self.kafka_bootstrap:
            return KafkaTransport(
                self.kafka_bootstrap, client_id=client_id, timeouts=self.kafka_group_timeouts()
            )
        return InProcessTransport.at(self.transport_path)
