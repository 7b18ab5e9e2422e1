"""Step 10: the planned activities in the consultant's calendar.

Embedded (and `make up` without Graph settings) the calendar is the owner's .ics feed; when
calendar-sync writes to Microsoft Graph instead there is no feed (404), and the step falls
back to calendar-sync's own record of each entry (`GET /sync/activities/{id}`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from crm_demo.client import ANNA
from crm_demo.ics import VEvent, vevents
from crm_demo.poll import poll
from crm_demo.run import Result, Run
from crm_demo.table import columns
from crm_demo.timing import COPENHAGEN, shown

UID_DOMAIN: Final = "calendar-sync.crm"


def uid(activity: dict[str, Any]) -> str:
    return f"{activity['id']}@{UID_DOMAIN}"


def feed(run: Run) -> Result:
    planned = [a for a in run.activities.values() if a["status"] == "planned"]
    if not planned:
        return Result(False, "no planned activities to look for (earlier steps failed)")
    path = f"/calendars/{ANNA.user}.ics"
    if run.api.get(ANNA, "calendar-sync", path).status_code == 404:
        return graph_entries(run, planned)
    wanted = {uid(a): a for a in planned}
    names = {c.customer_id: c.name for c in run.customers.values()}

    def events() -> list[VEvent] | None:
        response = run.api.get(ANNA, "calendar-sync", path)
        return vevents(response.text) if response.status_code == 200 else None

    def shows_all() -> list[VEvent] | None:
        found = events()
        if found is None:
            return None
        ours = {e.uid: e for e in found if e.uid in wanted}
        matches = all(u in ours and _as_planned(ours[u], a, names) for u, a in wanted.items())
        return found if matches else None

    # The feed is projected from activity events, and the names from customer snapshots.
    waited = poll(shows_all, deadline_s=run.wait_s)
    last = waited.value if waited.value is not None else (events() or [])
    ours = {uid(a) for a in run.activities.values()}
    mine = sorted(
        (e for e in last if e.uid in ours), key=lambda e: e.start.timestamp() if e.start else 0.0
    )
    rows = [("start", "end", "summary", "status", "categories")]
    rows += [
        (
            shown(e.start) if e.start else "?",
            f"{e.end.astimezone(COPENHAGEN):%H:%M}" if e.end else "?",
            e.summary,
            e.status,
            e.categories,
        )
        for e in mine
    ]
    if waited.value is not None:
        happened = (
            f"GET {path}: all {len(wanted)} planned activities present with their current "
            f"time and type after {waited.took()} ({len(last)} VEVENTs in the feed)"
        )
    else:
        missing = [
            f"{_summary(a, names)} at {shown(a['starts_at'])}"
            for u, a in wanted.items()
            if not any(e.uid == u and _as_planned(e, a, names) for e in last)
        ]
        happened = f"after {waited.took()} the feed still lacks: {'; '.join(missing)}"
    summaries = [e.summary for e in mine if e.uid in wanted]
    ok = waited.value is not None
    return Result(ok, happened, tuple(columns(rows)), {"summaries": summaries})


def graph_entries(run: Run, planned: list[dict[str, Any]]) -> Result:
    def record(activity: dict[str, Any]) -> dict[str, Any] | None:
        response = run.api.get(ANNA, "calendar-sync", f"/sync/activities/{activity['id']}")
        return dict(response.json()) if response.status_code == 200 else None

    def all_synced() -> list[dict[str, Any]] | None:
        found = [record(a) for a in planned]
        synced = all(
            r is not None and r["status"] == "synced" and r["activity_version"] >= a["version"]
            for r, a in zip(found, planned, strict=True)
        )
        return [r for r in found if r is not None] if synced else None

    waited = poll(all_synced, deadline_s=run.wait_s)
    records = waited.value or [r for r in (record(a) for a in planned) if r is not None]
    rows = [("activity", "status", "mailbox", "calendar entry")]
    rows += [
        (r["activity_id"], r["status"], r["mailbox"], r["outlook_event_id"] or "") for r in records
    ]
    happened = (
        f"no .ics feed here (calendar-sync writes to Microsoft Graph); all {len(planned)} "
        f"planned activities synced to {ANNA.user}'s calendar after {waited.took()}"
        if waited.value is not None
        else f"no .ics feed, and not every planned activity was synced within {waited.took()}"
    )
    return Result(waited.value is not None, happened, tuple(columns(rows)), {"graph": True})


def _as_planned(event: VEvent, activity: dict[str, Any], names: dict[str, str]) -> bool:
    start = datetime.fromisoformat(activity["starts_at"])
    return event.summary == _summary(activity, names) and event.start == start


def _summary(activity: dict[str, Any], names: dict[str, str]) -> str:
    name = names.get(activity["customer_id"], activity["customer_id"])
    return f"{activity['type_label']}: {activity['subject']} – {name}"
