"""The team report over a few thousand customers: one grouped count query per year and the
registry paged, not one event stream per customer (only those whose segment changed this
year have their history read)."""

from __future__ import annotations

import time
from decimal import Decimal

from crm_contracts.enums import ActivityType
from segmentation.application import NewCustomer, SegmentationApplication
from segmentation.attainment import ActivityEventsConsumer

from tests.integration.segmentation.test_attainment_support import (
    Feed,
    completed,
    feed,
    planned,
    utc,
    view,
)
from tests.support.clock import ManualClock
from tests.support.people import MIA

__all__ = ["feed", "view"]  # fixtures

CUSTOMERS = 3000
OWNERS = ("anna@example.dk", "bo@example.dk", "carl@example.dk")
POTENTIALS = ("390000", "200000", "50000")  # A, B, C


def test_the_report_over_3000_customers(
    app: SegmentationApplication, clock: ManualClock, view: ActivityEventsConsumer, feed: Feed
) -> None:
    today = clock.now
    clock.now = utc(2025, 12, 1, 9)
    app.register_customers(
        MIA,
        [
            NewCustomer(
                name=f"Kunde {i}",
                customer_id=f"k{i}",
                owner=OWNERS[i % 3],
                potential=Decimal(POTENTIALS[(i // 3) % 3]),
                assessed_at=clock.now,
            )
            for i in range(CUSTOMERS)
        ],
    )
    clock.now = utc(2026, 2, 1, 9)
    app.assess_potential(MIA, "k0", amount="200000")  # A -> B on 1 February: history is read
    clock.now = today
    for i in range(300):
        plan = planned(f"k{i}-s", f"k{i}", ActivityType.STATUS_MEETING, utc(2026, 2, 2, 9))
        feed(plan, completed(plan, plan.ends_at))

    started = time.monotonic()
    rows = view.report(2026, clock.now)
    elapsed = time.monotonic() - started
    print(f"report over {CUSTOMERS} customers: {elapsed * 1000:.0f} ms")

    assert len(rows) == 9
    assert sum(r.customers for r in rows) == CUSTOMERS
    assert sum(r.actual for r in rows) == 300
    # 1002 A (6 each), 999 B (5) and 999 C (5): 16002 - except k0: A for 31 days, then B.
    # k0's minimums: discovery 1, proposal 1, status (4*31 + 2*334)/365 = 2.170 -> 2.2,
    # sales 334/365 = 0.915 -> 0.9: 5.1 instead of 6.
    assert sum(r.recommended_min for r in rows) == Decimal("16001.1")
    k0_row = next(r for r in rows if r.owner == OWNERS[0] and r.segment == "B")
    assert k0_row.customers == 334  # 333 Bs of Anna's, and k0 now
