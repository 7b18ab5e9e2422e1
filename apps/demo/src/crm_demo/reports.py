"""Step 9: the meetings against the segment's targets, per customer and for the consultant."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime

from crm_demo.client import ANNA, expect
from crm_demo.poll import poll
from crm_demo.run import Result, Run
from crm_demo.table import columns
from crm_demo.timing import COPENHAGEN, today

Counts = dict[tuple[str, str], tuple[int, int]]  # (customer_id, type) → (held, planned)


def expected_counts(run: Run, year: int) -> Counts:
    """What attainment must show for this run's activities: completed ones as held, planned
    ones (starting in `year`) as planned."""
    held: Counter[tuple[str, str]] = Counter()
    planned: Counter[tuple[str, str]] = Counter()
    for activity in run.activities.values():
        key = (activity["customer_id"], activity["type"])
        if activity["status"] == "completed":
            held[key] += 1
        elif activity["status"] == "planned":
            start = datetime.fromisoformat(activity["starts_at"]).astimezone(COPENHAGEN)
            if start.year == year:
                planned[key] += 1
    return {key: (held[key], planned[key]) for key in held.keys() | planned.keys()}


def attainment_lines(run: Run, customer_id: str, year: int) -> list[dict[str, str]] | None:
    response = run.api.request(
        ANNA,
        "GET",
        "segmentation",
        f"/customers/{customer_id}/attainment",
        params={"year": str(year)},
        headers={"Accept": "text/csv"},
    )
    if response.status_code != 200:
        return None
    return list(csv.DictReader(io.StringIO(response.text)))


def _all_counted(run: Run, year: int, wanted: Counts) -> dict[str, list[dict[str, str]]] | None:
    found: dict[str, list[dict[str, str]]] = {}
    for customer in run.customers.values():
        lines = attainment_lines(run, customer.customer_id, year)
        if lines is None:
            return None
        for line in lines:
            key = (customer.customer_id, line["type"])
            if (int(line["actual"]), int(line["scheduled"])) != wanted.get(key, (0, 0)):
                return None
        found[customer.customer_id] = lines
    return found


def attainment(run: Run) -> Result:
    year = today().year
    wanted = expected_counts(run, year)
    if not run.customers:
        return Result(False, "no customers to report on (step 1 failed)")
    # Attainment counts activity events as they arrive from the activity service: wait.
    counted = poll(lambda: _all_counted(run, year, wanted), deadline_s=run.wait_s)
    rows = [("customer", "segment", "meeting type", "held", "planned", "target", "status")]
    for customer in run.customers.values():
        for line in (counted.value or {}).get(customer.customer_id, []):
            target = f"{line['min']}–{line['max']}" if line["counted"] == "yes" else "-"
            idle = line["actual"] == line["scheduled"] == "0"
            if idle and (line["counted"] == "no" or line["max"] in ("0", "0.0")):
                continue  # nothing done and nothing asked for: noise in a demo
            rows.append(
                (
                    customer.name,
                    run.segment_label(line["segment"]),
                    line["type_label"],
                    line["actual"],
                    line["scheduled"],
                    target,
                    line["status_label"],
                )
            )
    report = expect(
        run.api.get(
            ANNA, "segmentation", "/reports/attainment", {"year": str(year), "owner": ANNA.user}
        ),
        200,
    )
    team = [("segment", "customers", "on target", "held", "planned", "recommended")]
    team += [
        (
            run.segment_label(r["segment"]),
            str(r["customers"]),
            str(r["on_target"]),
            str(r["actual"]),
            str(r["scheduled"]),
            f"{r['recommended_min']}–{r['recommended_max']}",
        )
        for r in report["rows"]
    ]
    held = sum(h for h, _ in wanted.values())
    planned = sum(p for _, p in wanted.values())
    happened = (
        f"{year}: the demo customers' meetings counted after {counted.took()} "
        f"({held} held, {planned} planned); {ANNA.user}'s report has {len(report['rows'])} "
        "segment rows (all her customers, earlier runs included)"
        if counted.value
        else f"attainment did not show {held} held / {planned} planned within {counted.took()}"
    )
    detail = (
        f"attainment {year} per demo customer (targets pro rata for the days in the segment, "
        "status judged in whole meetings):",
        *columns(rows),
        f"team report {year} for {ANNA.user}:",
        *columns(team),
    )
    return Result(counted.value is not None, happened, detail, {"counts": wanted})
