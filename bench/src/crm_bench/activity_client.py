"""What the command-path and propagation benchmarks send to the activity service, and the
customers they need it to know.

Planning refuses a customer that is not in activity's customer directory
(`ActivityApplication._known_customer`). In production the directory is fed by segmentation's
snapshots on `crm.customers.v1` (`CustomerDirectory.handle`). That topic name is fixed and the
broker is shared, so bench customers published there would land in every other installation's
directory; instead they are written with `CustomerDirectory.apply_snapshot`, the directory's own
seeding entry, which runs the same upsert as the consumer's handler.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from activity.consumers import CustomerDirectory
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.enums import Segment
from crm_platform.settings import RuntimeSettings

# Far enough ahead that "must be in the future" (R1, R5) holds for the whole run.
_LEAD = timedelta(days=30)


def seed_customers(postgres_dsn: str, schema_prefix: str, customer_ids: Iterable[str]) -> int:
    """Put the customers into the directory of the activity installation `schema_prefix`.

    Not prioritized (segment C): completing an activity then needs no follow-up (R8), so each
    iteration of the command path is exactly plan, move, complete.
    """
    settings = RuntimeSettings(postgres_dsn=postgres_dsn, schema_prefix=schema_prefix)
    store = settings.store("activity")
    store.ensure_schema()
    directory = CustomerDirectory(store.env())
    now = datetime.now(UTC)
    count = 0
    try:
        for customer_id in customer_ids:
            directory.apply_snapshot(
                CustomerSnapshot(
                    customer_id=customer_id,
                    name=f"Bench kunde {customer_id}",
                    segment=Segment.C,
                    prioritized=False,
                    updated_at=now,
                    version=1,
                    actor="crm-bench",
                )
            )
            count += 1
    finally:
        directory.close()
    return count


def plan_body(customer_id: str, owner: str, slot: int) -> dict[str, Any]:
    starts = datetime.now(UTC).replace(microsecond=0) + _LEAD + timedelta(minutes=slot % 10_000)
    return {
        "customer_id": customer_id,
        "owner": owner,
        "type": "status_meeting",
        "channel": "video",
        "subject": "Annonceplan forår",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "agenda": "Kampagner, budget og næste kvartal",
    }


def move_body(planned: dict[str, Any]) -> dict[str, Any]:
    starts = datetime.fromisoformat(planned["starts_at"]) + timedelta(days=1)
    return {"starts_at": starts.isoformat(), "reason": "no_answer", "note": "Ingen svar"}


COMPLETE_BODY: dict[str, Any] = {
    "note": "Kunden vil øge budgettet til forårskampagnen med 20 procent",
    "next_step": "Send tilbud på udvidet kampagne inden fredag",
}


def idempotency_key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}
