"""A service's parking lot opens one PostgreSQL connection, not a pool as large as its views'.

Every pool opens its size when the service starts; the lot's own queries are rare (its
parking writes ride on the workers' transactions), so a full pool would only spend the
connection budget.
"""

from __future__ import annotations

from crm_platform.eventstore import StoreLocation
from crm_platform.parking import ParkingLot


def test_the_parking_lot_keeps_a_small_pool(postgres_dsn: str, pg_schema: str) -> None:
    env = StoreLocation(postgres_dsn=postgres_dsn, schema=pg_schema, pool_size=10).env()
    lot = ParkingLot(env, "activity")
    try:
        pool = lot.recorder.datastore.pool  # type: ignore[attr-defined]
        assert (pool.min_size, pool.max_size) == (1, 3)
        assert lot.entries() == []  # and it works
    finally:
        lot.close()
