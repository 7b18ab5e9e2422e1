"""The services' connection pool hands out a working connection after the server dropped
the idle ones, without asking the server before every checkout."""

from __future__ import annotations

import psycopg
import pytest
from crm_platform.eventstore import ResilientPool, StoreLocation
from eventsourcing.postgres import PostgresDatastore

from tests.support.polling import wait_until


def _datastore(postgres_dsn: str, pg_schema: str) -> PostgresDatastore:
    env = StoreLocation(postgres_dsn=postgres_dsn, schema=pg_schema, pool_size=2).env()
    return PostgresDatastore(
        env["POSTGRES_DBNAME"],
        env["POSTGRES_HOST"],
        env["POSTGRES_PORT"],
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        pool_size=2,
        schema=pg_schema,
    )


def _backend(datastore: PostgresDatastore) -> int:
    with datastore.get_connection() as conn:
        row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
        assert row is not None
        return int(row["pid"])


def _terminate(postgres_dsn: str, backends: set[int]) -> None:
    """End these sessions as an administrator would, and wait until they are gone (their
    goodbye has then reached the client's socket)."""
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        for pid in backends:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_until(
            lambda: (
                not admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (list(backends),)
                ).fetchall()
            ),
            message="the terminated backends to be gone",
        )


def test_connections_the_server_terminated_are_replaced_at_checkout(
    postgres_dsn: str, pg_schema: str
) -> None:
    datastore = _datastore(postgres_dsn, pg_schema)
    try:
        before = {_backend(datastore) for _ in range(4)}
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            for pid in before:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            wait_until(
                lambda: (
                    not admin.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (list(before),)
                    ).fetchall()
                ),
                message="the terminated backends to be gone",
            )

        # No error reaches the caller: each dropped connection is noticed and replaced.
        after = {_backend(datastore) for _ in range(4)}

        assert after.isdisjoint(before)
    finally:
        datastore.close()


def test_a_healthy_idle_connection_costs_no_round_trip_at_checkout(
    postgres_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[object] = []
    real_check = ResilientPool.check_connection
    monkeypatch.setattr(
        ResilientPool, "check_connection", staticmethod(lambda c: pings.append(c) or real_check(c))
    )
    datastore = _datastore(postgres_dsn, pg_schema)
    try:
        backends = {_backend(datastore) for _ in range(20)}
        assert pings == []

        _terminate(postgres_dsn, backends)
        assert _backend(datastore) not in backends
        assert pings, "a connection the server closed is asked before it is handed out"
    finally:
        datastore.close()
