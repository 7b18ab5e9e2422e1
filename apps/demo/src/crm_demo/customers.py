"""Step 1: customers imported as CSV, segmented, and known to the activity service."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any, Final

from crm_demo.client import ANNA, MIA, error_of, expect
from crm_demo.poll import poll
from crm_demo.run import Customer, Result, Run
from crm_demo.table import columns
from crm_demo.timing import now, today

CSV_COLUMNS: Final = (
    "customer_id",
    "name",
    "cvr",
    "owner",
    "potential_dkk",
    "annual_agreement_from",
    "annual_agreement_to",
)
# key, name, potential, expected segment, prioritized. B, C and D sit one øre below the next
# boundary (half-open bands); the agreement customer's potential alone would make it C.
CAST: Final = (
    ("A", "Alfa Avis ApS", "450000.00", "A", True),
    ("B", "Bager Hansen ApS", "389999.99", "B", True),
    ("C", "Cykelhandler Carlsen", "139999.99", "C", False),
    ("D", "Dyrlæge Dahl", "44999.99", "D", False),
    ("AG", "Aarhus Møbler A/S", "60000.00", "annual_agreement", True),
)


def cast(run: str) -> list[Customer]:
    return [
        Customer(key, f"{run}-{key}", name, potential, segment, prioritized)
        for key, name, potential, segment, prioritized in CAST
    ]


def import_file(customers: list[Customer], owner: str) -> bytes:
    year = today().year
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for c in customers:
        agreement = (f"{year}-01-01", f"{year}-12-31") if c.key == "AG" else ("", "")
        writer.writerow((c.customer_id, c.name, "", owner, c.potential, *agreement))
    return out.getvalue().encode("utf-8")


def yes_no(flag: bool) -> str:
    return "ja" if flag else "nej"


def import_and_segment(run: Run) -> Result:
    customers = cast(run.run)
    response = run.api.request(
        MIA,
        "POST",
        "segmentation",
        "/customers/import",
        content=import_file(customers, ANNA.user),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    report = expect(response, 200)
    rows = [("customer", "name", "potential", "segment", "prioritized", "guide says")]
    mismatches: list[str] = []
    segments: dict[str, str] = {}
    prioritized: dict[str, bool] = {}
    for c in customers:
        got = expect(run.api.get(ANNA, "segmentation", f"/customers/{c.customer_id}"), 200)
        segments[c.key] = got["segment"]
        prioritized[c.key] = got["prioritized"]
        run.segment_labels[got["segment"]] = got["segment_label"]
        agreement = got.get("annual_agreement")
        label = got["segment_label"] + (
            f" ({agreement['starts_on']}–{agreement['ends_on']})" if agreement else ""
        )
        rows.append(
            (
                c.customer_id,
                c.name,
                got["potential_dkk"] or "",
                label,
                yes_no(got["prioritized"]),
                f"{c.segment}, {yes_no(c.prioritized)}",
            )
        )
        if (got["segment"], got["prioritized"]) != (c.segment, c.prioritized):
            mismatches.append(f"{c.key} is {got['segment']}/{yes_no(got['prioritized'])}")
        # Kept even when judged wrongly: the later steps still show what the system does.
        run.customers[c.key] = c
    known = poll(lambda: _directory_knows(run, customers), deadline_s=run.wait_s)
    imported, rejected = report["imported"], len(report["rejected"])
    ok = imported == len(customers) and rejected == 0 and not mismatches and known.value
    happened = (
        f"import: {imported} imported, {rejected} rejected; segments read back: "
        + ", ".join(f"{c.key}→{run.segment_label(segments.get(c.key, '?'))}" for c in customers)
        + (f"; WRONG: {'; '.join(mismatches)}" if mismatches else "")
        + (
            f"; the activity service knew all {len(customers)} (the prioritized ones in its "
            f"R8 report with their segment) after "
            f"{known.took()}"
            if known.value
            else f"; the activity service did not know them within {known.took()}"
        )
    )
    facts = {
        "segments": segments,
        "prioritized": prioritized,
        "customer_ids": {c.key: c.customer_id for c in customers},
        "imported": imported,
        "rejected": rejected,
        "directory_synced": bool(known.value),
    }
    return Result(bool(ok), happened, tuple(columns(rows)), facts)


def r8_gaps(run: Run) -> dict[str, dict[str, Any]]:
    """The activity service's R8 report: the prioritized customers without a future activity
    (ours before their first plan), with the segment its directory has for them."""
    response = run.api.get(ANNA, "activity", "/reports/without-future-activity")
    if response.status_code != 200:
        return {}
    return {row["customer_id"]: row for row in response.json()}


def directory_has(run: Run, customer: Customer) -> bool:
    """Whether the activity service's directory knows the customer. A plan that ends when it
    starts is refused either way, so nothing is stored: as `unknown_customer` while the
    directory has not heard of the customer, by R5 once it has."""
    starts = (now() + timedelta(days=1)).isoformat()
    body = {
        "customer_id": customer.customer_id,
        "owner": ANNA.user,
        "type": "contact",
        "channel": "phone",
        "subject": "Kender aktivitetstjenesten kunden?",
        "starts_at": starts,
        "ends_at": starts,
    }
    response = run.api.post(ANNA, "activity", "/activities", body)
    return response.status_code == 422 and error_of(response)[0] == "R5"


def _directory_knows(run: Run, customers: list[Customer]) -> bool:
    """Every customer known to the activity service; the prioritized ones with their segment,
    as its R8 report shows them while nothing is planned for them."""
    gaps = r8_gaps(run)
    return all(
        gaps.get(c.customer_id, {}).get("segment") == c.segment
        if c.prioritized
        else directory_has(run, c)
        for c in customers
    )
