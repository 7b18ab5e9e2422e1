"""Inbound messages: the customer directory, fed by `crm.customers.v1`.

The segmentation service owns customers; this service keeps the little it needs (name,
segment, prioritized flag, owner) to refuse plans for unknown customers, to enforce R8 and
to tell a watcher when a customer's standing changed (it may now lack a future activity). Each
snapshot is applied with its partition's tracking position in one transaction, and an older
snapshot never overwrites a newer one, so redelivery and reordering across restarts are
harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from crm_contracts.cloudevents import decode, is_tombstone
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.errors import InvalidMessage
from crm_contracts.wire import WireMessage
from crm_platform.messaging import Delivery
from crm_platform.sqlview import SqlView, ViewTransaction, iso

from activity.rules import CustomerEntry

Changed = Callable[[CustomerEntry | None, CustomerEntry | None], None]
"""Told, after the commit, a customer's entry before and after a snapshot that changed it."""


class CustomerDirectory(SqlView):
    # Renamed with the owner column: a new name reads the compacted topic from its start.
    name = "activity_customers"
    ddl = (
        "CREATE TABLE IF NOT EXISTS {t}customers ("
        " customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, segment TEXT NOT NULL,"
        " prioritized BOOLEAN NOT NULL, owner TEXT, version BIGINT NOT NULL,"
        " updated_at TEXT NOT NULL, activities_owner TEXT)",
    )
    # activities_owner: the consultant the customer's open activities were last moved to (or
    # found with). It differs from `owner` from the snapshot that changed the owner until the
    # watch has moved them (`owner_changes`, `followed`), so a crash in between loses nothing.

    def __init__(self, env: Mapping[str, str], *, on_changed: Changed | None = None) -> None:
        super().__init__(env)
        self.on_changed = on_changed

    def get(self, customer_id: str) -> CustomerEntry | None:
        # Read on every command, never cached: the consumer that writes this table runs in
        # another process, and R8 and the unknown-customer check must see its last commit.
        row = self.read_one(
            "SELECT customer_id, name, segment, prioritized, owner"
            " FROM {t}customers WHERE customer_id = ?",
            (customer_id,),
        )
        return _entry(row) if row is not None else None

    def handle(self, message: WireMessage, delivery: Delivery) -> None:
        """The message handler for `crm.customers.v1` (a poison message raises ContractError)."""
        if self.has_seen(delivery.tracking_name, delivery.offset):
            return
        change: tuple[CustomerEntry | None, CustomerEntry | None]
        with self.transaction() as tx:
            if is_tombstone(message):
                before = _read(tx, message.key)
                tx.execute("DELETE FROM {t}customers WHERE customer_id = ?", (message.key,))
                change = (before, None)
            else:
                snapshot = decode(message).message
                if not isinstance(snapshot, CustomerSnapshot):
                    raise InvalidMessage(
                        type(snapshot).ce_type, "only customer snapshots belong on this topic"
                    )
                change = self._upsert(tx, snapshot)
            tx.track(delivery.tracking_name, delivery.offset)
        self._tell(*change)

    def apply_snapshot(self, snapshot: CustomerSnapshot) -> None:
        """Apply one snapshot outside any topic (seeding and tests)."""
        with self.transaction() as tx:
            change = self._upsert(tx, snapshot)
        self._tell(*change)

    def owner_changes(self) -> list[tuple[str, str, str]]:
        """(customer, old consultant, new consultant) where the open activities have yet to
        follow the customer's new owner."""
        rows = self.query(
            "SELECT customer_id, activities_owner, owner FROM {t}customers"
            " WHERE owner IS NOT NULL AND activities_owner IS NOT NULL"
            " AND owner <> activities_owner ORDER BY customer_id"
        )
        return [(r["customer_id"], r["activities_owner"], r["owner"]) for r in rows]

    def followed(self, customer_id: str, owner: str) -> None:
        """The customer's open activities now follow `owner` (unless it changed again)."""
        with self.transaction() as tx:
            tx.execute(
                "UPDATE {t}customers SET activities_owner = ? WHERE customer_id = ? AND owner = ?",
                (owner, customer_id, owner),
            )

    def _tell(self, before: CustomerEntry | None, after: CustomerEntry | None) -> None:
        if self.on_changed is not None and before != after:
            self.on_changed(before, after)

    @staticmethod
    def _upsert(
        tx: ViewTransaction, snapshot: CustomerSnapshot
    ) -> tuple[CustomerEntry | None, CustomerEntry | None]:
        before = _read(tx, snapshot.customer_id)
        tx.execute(
            "INSERT INTO {t}customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (customer_id) DO UPDATE SET name = excluded.name,"
            " segment = excluded.segment, prioritized = excluded.prioritized,"
            " owner = excluded.owner, version = excluded.version,"
            " updated_at = excluded.updated_at,"
            " activities_owner = COALESCE({t}customers.activities_owner, excluded.owner)"
            " WHERE {t}customers.version < excluded.version",
            (
                snapshot.customer_id,
                snapshot.name,
                snapshot.segment.value,
                snapshot.prioritized,
                snapshot.owner,
                snapshot.version,
                iso(snapshot.updated_at),
                snapshot.owner,
            ),
        )
        return before, _read(tx, snapshot.customer_id)


def _read(tx: ViewTransaction, customer_id: str) -> CustomerEntry | None:
    tx.execute(
        "SELECT customer_id, name, segment, prioritized, owner"
        " FROM {t}customers WHERE customer_id = ?",
        (customer_id,),
    )
    row = tx.fetchone()
    return _entry(row) if row is not None else None


def _entry(row: Mapping[str, object]) -> CustomerEntry:
    owner = row["owner"]
    return CustomerEntry(
        str(row["customer_id"]),
        str(row["name"]),
        str(row["segment"]),
        bool(row["prioritized"]),
        owner=str(owner) if owner is not None else None,
    )
