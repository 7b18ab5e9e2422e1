"""Where a service keeps its events: one SQLite file (embedded) or one PostgreSQL schema.

Builds the environment eventsourcing reads (`PERSISTENCE_MODULE`, …) from our settings, so
the services never spell out eventsourcing's keys themselves, and gives eventsourcing's
PostgreSQL datastores a connection pool that rides out a database restart (`ResilientPool`).
"""

from __future__ import annotations

import select
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import eventsourcing.postgres
import psycopg
from eventsourcing.utils import get_topic
from psycopg import sql
from psycopg_pool import PoolTimeout
from psycopg_pool.base import AttemptWithBackoff

from crm_platform.eventsourcing_internals import OneTripRecorder

# How long a command may wait for a pooled connection while every one is busy. While the
# database is down nobody waits at all (`ResilientPool`).
POOL_WAIT_S = 5
# A reconnecting pool tries again at least this often, so the service is back within about
# this long once the database is (psycopg_pool's own backoff doubles without a cap).
RECONNECT_EVERY_S = 0.5
# Shortly after a pooled connection was found broken (the server may have gone), a caller
# waiting for a connection looks this often whether the server has been found unreachable
# meanwhile; otherwise it keeps its place in the pool's queue for the whole wait.
WAIT_SLICE_S = 0.25
SUSPECT_FOR_S = 5.0
# The advisory lock of `creating` is taken on a connection of its own; do not hang on it.
DDL_CONNECT_TIMEOUT_S = 10


def _check_idle(conn: Any) -> None:
    """Raise if an idle pooled connection is unusable, without a round trip in the usual case.

    An idle connection has nothing to read unless the server spoke first: a shutdown or a
    terminated backend sends an error and closes the socket, which makes it readable. Only
    then is the connection asked (an empty query), which raises if it is gone. A peer that
    vanished silently is caught by the command itself, which eventsourcing retries on a new
    connection. An empty query per checkout cost a round trip per statement on the command
    path (bench/RESULTS.md, command_path).
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        ResilientPool.check_connection(conn)


class _CappedBackoff(AttemptWithBackoff):
    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_EVERY_S)


_POOLS: weakref.WeakSet[ResilientPool] = weakref.WeakSet()


def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be reached, if a pool of this process knows it cannot (its last
    connection attempt failed and it has no idle connection left); else None."""
    for pool in list(_POOLS):
        if (reason := pool.refusing()) is not None:
            return reason
    return None


class ResilientPool(eventsourcing.postgres.ConnectionPool[Any]):
    """eventsourcing's pool, made to fail fast while PostgreSQL is down and to come back soon.

    - A connection is checked before it is handed out; a broken one (the server restarted)
      is dropped and the next tried at once. (eventsourcing's POSTGRES_PRE_PING uses
      psycopg_pool's check, which sleeps a second or more between broken connections.) The
      check costs no round trip unless the server has said something (`_check_idle`).
    - Once a connection attempt has failed and no idle connection is left, callers are
      refused at once with PoolTimeout (those already waiting included) instead of waiting
      the pool timeout: eventsourcing retries each operation ten times, so waiting would
      turn seconds into minutes, and an API should answer 503 promptly.
    - Reconnecting never gives up and tries at least every RECONNECT_EVERY_S; the first
      connection that succeeds lifts the refusal.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Giving up would leave a pool that refuses forever after a long outage.
        kwargs["reconnect_timeout"] = float("inf")
        self._unreachable: str | None = None
        self._unreachable_lock = threading.Lock()
        self._broken_at = -SUSPECT_FOR_S
        super().__init__(*args, **kwargs)
        _POOLS.add(self)

    def refusing(self) -> str | None:
        """Why callers are refused right now (see the class docstring), or None."""
        reason = self._unreachable
        return reason if reason is not None and not self._pool else None

    def close(self, timeout: float = 5.0) -> None:
        _POOLS.discard(self)
        super().close(timeout)

    def getconn(self, timeout: float | None = None) -> Any:
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            self._refuse_while_unreachable()
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                raise PoolTimeout(f"no PostgreSQL connection free within {wait:.1f} s")
            if now - self._broken_at < SUSPECT_FOR_S:
                remaining = min(remaining, WAIT_SLICE_S)
            try:
                conn = super().getconn(remaining)
            except PoolTimeout:
                continue
            try:
                _check_idle(conn)
            except Exception:
                # Closed by a server that went away: the pool discards it and reconnects.
                self._broken_at = time.monotonic()
                self.putconn(conn)
                continue
            return conn

    def _refuse_while_unreachable(self) -> None:
        if (reason := self.refusing()) is not None:
            raise PoolTimeout(f"PostgreSQL is unreachable: {reason}")

    def _connect(self, timeout: float | None = None) -> Any:
        try:
            conn = super()._connect(timeout)
        except Exception as error:
            with self._unreachable_lock:
                newly = self._unreachable is None
                self._unreachable = str(error).strip() or type(error).__name__
            if newly:
                self._fail_waiting()
            raise
        with self._unreachable_lock:
            self._unreachable = None
        return conn

    def _fail_waiting(self) -> None:
        """Callers already waiting for a connection are refused too, not left to their
        timeout (as psycopg_pool's own `close` does with them)."""
        with self._lock:
            waiting = list(self._waiting)
            self._waiting.clear()
        for client in waiting:
            client.fail(PoolTimeout(f"PostgreSQL is unreachable: {self._unreachable}"))

    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        super()._add_connection(attempt or _CappedBackoff(timeout=self.reconnect_timeout), growing)


def use_resilient_pool() -> None:
    """Make eventsourcing's PostgreSQL datastores build `ResilientPool`s from now on.

    eventsourcing offers no setting for the pool class; its datastore looks the name up in
    its module when it is constructed, so this must run before any application is built
    (`StoreLocation.env` does it).
    """
    eventsourcing.postgres.ConnectionPool = ResilientPool  # type: ignore[misc]


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
        use_resilient_pool()
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
            # eventsourcing's name for the pool's wait for a free connection.
            "POSTGRES_CONNECT_TIMEOUT": str(POOL_WAIT_S),
            "POSTGRES_LOCK_TIMEOUT": "5",
            # A service with recorders of its own (segmentation) sets its own topic.
            "APPLICATION_RECORDER_TOPIC": get_topic(OneTripRecorder),
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
        with psycopg.connect(
            self.postgres_dsn, autocommit=True, connect_timeout=DDL_CONNECT_TIMEOUT_S
        ) as conn:
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
