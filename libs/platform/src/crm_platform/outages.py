"""What an outage looks like from inside a process: the errors that mean "a dependency is down".

Such an error says nothing about the request or the event at hand, only about PostgreSQL or
the broker at this moment. So it is answered 503 (crm_platform.http.unavailable), waited out
by workers, and never parked or dead-lettered: that would lose a good event.
"""

from __future__ import annotations

import sqlite3
from typing import Final

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from kafka.errors import RetriableError as KafkaRetriableError

from crm_platform.messaging.port import PublishError

__all__ = ["TRANSIENT_ERRORS", "UNAVAILABLE"]

# psycopg_pool.PoolTimeout is a psycopg.OperationalError; so are the server's shutdown errors.
# Of Kafka's errors only the retriable ones (no connection, timed out, no leader) mean "down".
UNAVAILABLE: Final[tuple[type[Exception], ...]] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    OperationalError,
    InterfaceError,
    PublishError,
    KafkaRetriableError,
)

# Workers also wait out a SQLite file another thread holds locked (the embedded mode).
TRANSIENT_ERRORS: Final[tuple[type[Exception], ...]] = (*UNAVAILABLE, sqlite3.OperationalError)
