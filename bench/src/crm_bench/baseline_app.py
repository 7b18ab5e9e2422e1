"""The command path's baseline: the least a FastAPI service writing to PostgreSQL does.

`python -m crm_bench.baseline_app --port N`: one `POST /rows` that parses a JSON body and
inserts it as one row through a psycopg connection pool, served exactly as the activity API
is served (same JSON logging, `uvicorn.run(app, log_config=None)`, a plain `def` route in the
thread pool, a pool of CRM_POOL_SIZE connections growing to twice that like eventsourcing's).
No auth, no event store, no rules: what is left is the price of HTTP and one commit.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn
from crm_platform.logs import configure_logging
from crm_platform.settings import RuntimeSettings
from fastapi import Body, FastAPI
from psycopg import sql
from psycopg_pool import ConnectionPool

SCHEMA = "baseline"


def create_app(settings: RuntimeSettings) -> FastAPI:
    assert settings.postgres_dsn, "CRM_POSTGRES_DSN is needed"
    schema = f"{settings.schema_prefix}{SCHEMA}"
    pool = ConnectionPool(
        settings.postgres_dsn,
        min_size=settings.pool_size,
        max_size=2 * settings.pool_size,
        open=True,
    )
    table = sql.Identifier(schema, "rows")
    with pool.connection() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id BIGSERIAL PRIMARY KEY, body JSONB NOT NULL)"
            ).format(table)
        )
    insert = sql.SQL("INSERT INTO {} (body) VALUES (%s) RETURNING id").format(table)
    web = FastAPI(title="bench baseline")

    @web.post("/rows", status_code=201)
    def add(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008 (FastAPI idiom)
        with pool.connection() as conn:
            row = conn.execute(insert, (json.dumps(body),)).fetchone()
        assert row is not None
        return {"id": row[0]}

    @web.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    web.router.on_shutdown.append(pool.close)
    return web


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_bench.baseline_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    configure_logging()
    uvicorn.run(create_app(RuntimeSettings()), host=args.host, port=args.port, log_config=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
