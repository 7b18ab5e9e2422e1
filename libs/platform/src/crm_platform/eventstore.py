"""Where a service keeps its events: one SQLite file (embedded) or one PostgreSQL schema.

Builds the environment eventsourcing reads (`PERSISTENCE_MODULE`, …) from our settings, so
the services never spell out eventsourcing's keys themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Either `sqlite_path` or `postgres_dsn` (+ `schema`) is set."""

    sqlite_path: str | None = None
    postgres_dsn: str | None = None
    schema: str = "public"
    pool_size: int = 10
    max_overflow: int = 10

    @property
    def is_postgres(self) -> bool:
        return self.postgres_dsn is not None

    def env(self) -> dict[str, str]:
        if self.postgres_dsn is None:
            if not self.sqlite_path:
                raise ValueError("a SQLite path or a PostgreSQL DSN is needed")
            Path(self.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": self.sqlite_path,
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        parts = urlsplit(self.postgres_dsn)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or ""),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_POOL_SIZE": str(self.pool_size),
            "POSTGRES_MAX_OVERFLOW": str(self.max_overflow),
            # A saturated pool should fail fast enough for a 503, not hang a request.
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "5",
        }

    def ensure_schema(self) -> None:
        """eventsourcing expects the schema to exist; create it on first start."""
        with self.creating():
            pass

    @contextmanager
    def creating(self) -> Iterator[None]:
        """Create the schema, and hold a lock while the caller creates its tables in it.

        eventsourcing (re)creates its tables and functions whenever an application is
        constructed; two processes of one service starting together (a relay and its API, two
        pods) would otherwise race on the same catalog rows and one would die with "tuple
        concurrently updated". The lock is per schema, so other services start in parallel.
        """
        if self.postgres_dsn is None:
            yield
            return
        with psycopg.connect(self.postgres_dsn, autocommit=True) as conn:
            key = f"crm-ddl:{self.schema}"
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
            try:
                if self.schema != "public":
                    conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            sql.Identifier(self.schema)
                        )
                    )
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
