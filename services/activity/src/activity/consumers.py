"""Inbound messages: the customer directory, fed by `crm.customers.v1`.

The segmentation service owns customers; this service keeps the little it needs (name,
segment, prioritized flag) to refuse plans for unknown customers and to enforce R8. Each
snapshot is applied with its partition's tracking position in one transaction, and an older
snapshot never overwrites a newer one, so redelivery and reordering across restarts are
harmless.
"""

from __future__ import annotations

from collections.abc import Mapping

from crm_contracts.cloudevents import decode, is_tombstone
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.errors import InvalidMessage
from crm_contracts.wire import WireMessage
from crm_platform.messaging import Delivery
from crm_platform.sqlview import SqlView, ViewTransaction, iso

from activity.rules import CustomerEntry


class CustomerDirectory(SqlView):
    name = "activity_directory"
    ddl = (
        "CREATE TABLE IF NOT EXISTS {t}customers ("
        " customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, segment TEXT NOT NULL,"
        " prioritized BOOLEAN NOT NULL, version BIGINT NOT NULL, updated_at TEXT NOT NULL)",
    )

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)

    def get(self, customer_id: str) -> CustomerEntry | None:
        # Read on every command, never cached: the consumer that writes this table runs in
        # another process, and R8 and the unknown-customer check must see its last commit.
        row = self.read_one(
            "SELECT customer_id, name, segment, prioritized"
            " FROM {t}customers WHERE customer_id = ?",
            (customer_id,),
        )
        if row is None:
            return None
        return CustomerEntry(
            row["customer_id"], row["name"], row["segment"], bool(row["prioritized"])
        )

    def handle(self, message: WireMessage, delivery: Delivery) -> None:
        """The message handler for `crm.customers.v1` (a poison message raises ContractError)."""
        if self.has_seen(delivery.tracking_name, delivery.offset):
            return
        with self.transaction() as tx:
            if is_tombstone(message):
                tx.execute("DELETE FROM {t}customers WHERE customer_id = ?", (message.key,))
            else:
                snapshot = decode(message).message
                if not isinstance(snapshot, CustomerSnapshot):
                    raise InvalidMessage(
                        type(snapshot).ce_type, "only customer snapshots belong on this topic"
                    )
                self._upsert(tx, snapshot)
            tx.track(delivery.tracking_name, delivery.offset)

    def apply_snapshot(self, snapshot: CustomerSnapshot) -> None:
        """Apply one snapshot outside any topic (seeding and tests)."""
        with self.transaction() as tx:
            self._upsert(tx, snapshot)

    @staticmethod
    def _upsert(tx: ViewTransaction, snapshot: CustomerSnapshot) -> None:
        tx.execute(
            "INSERT INTO {t}customers VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (customer_id) DO UPDATE SET name = excluded.name,"
            " segment = excluded.segment, prioritized = excluded.prioritized,"
            " version = excluded.version, updated_at = excluded.updated_at"
            " WHERE {t}customers.version < excluded.version",
            (
                snapshot.customer_id,
                snapshot.name,
                snapshot.segment.value,
                snapshot.prioritized,
                snapshot.version,
                iso(snapshot.updated_at),
            ),
        )
