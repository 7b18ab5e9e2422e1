"""Dropping what a test installation left in PostgreSQL."""

from __future__ import annotations

import warnings


def drop_schemas(postgres_dsn: str, prefix: str) -> None:
    """Best effort: the stack's schemas go once its processes are stopped."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute("set lock_timeout = '10s'")
            names = [
                row[0]
                for row in conn.execute(
                    "select nspname from pg_namespace where starts_with(nspname, %s)", (prefix,)
                )
            ]
            for name in names:
                conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))
    except Exception as exc:
        warnings.warn(f"could not drop the stack's schemas {prefix}*: {exc!r}", stacklevel=1)
