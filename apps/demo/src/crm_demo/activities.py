"""Steps 2–8: the consultant's working day by the guide's rules R1–R9."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, Final

from crm_demo.client import ANNA, Unexpected, describe, error_of, expect
from crm_demo.customers import r8_gaps
from crm_demo.poll import poll
from crm_demo.run import Customer, Result, Run
from crm_demo.timing import now, shown, slot, span, today, workday

PROPOSAL: Final = b"Skriftligt, bindende oplaeg: annoncering 2027, print og web."
USELESS_NOTE: Final = "ringede, ingen svar"


def plan_body(
    customer: Customer,
    type_: str,
    channel: str,
    subject: str,
    times: tuple[datetime, datetime],
    agenda: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer.customer_id,
        "owner": ANNA.user,
        "type": type_,
        "channel": channel,
        "subject": subject,
        "starts_at": times[0].isoformat(),
        "ends_at": times[1].isoformat(),
    }
    if agenda:
        body["agenda"] = agenda
    return body


def plan(run: Run, role: str, body: dict[str, Any]) -> dict[str, Any]:
    activity = expect(run.api.post(ANNA, "activity", "/activities", body), 201)
    run.activities[role] = activity
    return activity


def described(activity: dict[str, Any], customer: Customer) -> str:
    return (
        f"{activity['type_label']} '{activity['subject']}' with {customer.name}, "
        f"{span(activity['starts_at'], activity['ends_at'])} ({activity['channel_label']})"
    )


def plan_status_meeting(run: Run) -> Result:
    alfa = run.customer("A")
    body = plan_body(
        alfa,
        "status_meeting",
        "phone",
        "Status på annoncering",
        slot(workday(today(), 1), 10),
        agenda="Resultater af efterårets kampagne; næste kvartals plan",
    )
    activity = plan(run, "status_A", body)
    ok = activity["status"] == "planned" and activity["type"] == "status_meeting"
    happened = (
        f"{described(activity, alfa)} in {activity['owner']}'s calendar, "
        f"status {activity['status']}"
    )
    return Result(ok, happened, facts={"activity_id": activity["id"]})


def move_no_answer(run: Run) -> Result:
    meeting = run.activity("status_A")
    new_start, _ = slot(workday(today(), 2), 14)
    body = {"starts_at": new_start.isoformat(), "reason": "no_answer", "note": "Tog ikke telefonen"}
    path = f"/activities/{meeting['id']}/move"
    moved = expect(run.api.post(ANNA, "activity", path, body, version=meeting["version"]), 200)
    run.activities["status_A"] = moved
    row = poll(lambda: _moved_row(run, moved), deadline_s=run.wait_s)
    history = expect_list(run, f"/activities/{moved['id']}/history")
    move_events = [e for e in history if e["event"] == "moved"]
    last = move_events[-1]["details"] if move_events else {}
    reason, note = last.get("reason"), last.get("note") or ""
    count = row.value["move_count"] if row.value else None
    times = [_at(e) for e in history]
    ok = (
        moved["status"] == "planned"
        and datetime.fromisoformat(moved["starts_at"]) == new_start
        and reason == "no_answer"
        and count == 1
        # The history keeps the first time: the plan event still says when it was.
        and bool(times)
        and times[0] == datetime.fromisoformat(meeting["starts_at"])
    )
    happened = (
        f"moved {shown(meeting['starts_at'])} → {shown(moved['starts_at'])}, "
        f"reason {reason} ('{note}'), "
        f"status still {moved['status']}, move count {count if count is not None else '?'}; "
        "history: "
        + ", ".join(
            f"{e['event']} {shown(t)}" if t else e["event"]
            for e, t in zip(history, times, strict=True)
        )
    )
    return Result(ok, happened, facts={"reason": reason, "move_count": count})


def _at(event: dict[str, Any]) -> datetime | None:
    starts_at = event["details"].get("starts_at")
    return datetime.fromisoformat(starts_at) if isinstance(starts_at, str) else None


def _moved_row(run: Run, moved: dict[str, Any]) -> dict[str, Any] | None:
    # The list is a read model, projected after the command: wait for it to catch up.
    params = {"customer_id": moved["customer_id"]}
    response = run.api.get(ANNA, "activity", "/activities", params)
    if response.status_code != 200:
        return None
    for row in response.json()["items"]:
        if row["activity_id"] == moved["id"] and row["version"] >= moved["version"]:
            return dict(row)
    return None


def expect_list(run: Run, path: str) -> list[dict[str, Any]]:
    response = run.api.get(ANNA, "activity", path)
    if response.status_code != 200:
        raise Unexpected(f"GET {path} answered {describe(response)}")
    return list(response.json())


def retype_contact(run: Run) -> Result:
    carlsen = run.customer("C")
    body = plan_body(
        carlsen, "contact", "phone", "Forårskampagne", slot(workday(today(), 1), 11, 30)
    )
    contact = plan(run, "sales_C", body)
    change = {"type": "sales_meeting", "channel": "physical", "reason": "Kunden vil mødes"}
    path = f"/activities/{contact['id']}/retype"
    retyped = expect(run.api.post(ANNA, "activity", path, change, version=contact["version"]), 200)
    run.activities["sales_C"] = retyped
    history = expect_list(run, f"/activities/{retyped['id']}/history")
    first_type = history[0]["details"].get("type") if history else None
    ok = retyped["type"] == "sales_meeting" and first_type == "contact"
    happened = (
        f"{contact['type_label']} ({contact['channel_label']}) → {retyped['type_label']} "
        f"({retyped['channel_label']}), {span(retyped['starts_at'], retyped['ends_at'])}; "
        f"history: {', '.join(e['event'] for e in history)} (planned as {first_type})"
    )
    return Result(ok, happened, facts={"type": retyped["type"], "was": first_type})


def register_visit(run: Run) -> Result:
    dahl = run.customer("D")
    body = {
        "customer_id": dahl.customer_id,
        "owner": ANNA.user,
        "type": "unannounced_visit",
        "channel": "physical",
        "held_at": (now() - timedelta(hours=1)).isoformat(),
        "subject": "Salgsbrev om julekampagne",
        "note": "Afleverede salgsbrev om julekampagnen til indehaveren",
    }
    visit = expect(run.api.post(ANNA, "activity", "/activities/registrations", body), 201)
    run.activities["visit_D"] = visit
    ok = visit["type"] == "unannounced_visit" and visit["registered"] is True
    happened = (
        f"{visit['type_label']} ({visit['channel_label']}) at {dahl.name} held "
        f"{shown(visit['starts_at'])}, registered after the fact, status {visit['status']}"
    )
    return Result(ok, happened, facts={"type": visit["type"]})


def refuse_useless_note(run: Run) -> Result:
    carlsen = run.customer("C")
    body = {
        "customer_id": carlsen.customer_id,
        "owner": ANNA.user,
        "type": "contact",
        "channel": "phone",
        "held_at": (now() - timedelta(minutes=30)).isoformat(),
        "note": USELESS_NOTE,
    }
    response = run.api.post(ANNA, "activity", "/activities/registrations", body)
    code, message = error_of(response)
    ok = response.status_code == 422 and code == "R4"
    happened = f"note '{USELESS_NOTE}': {response.status_code} {code}: {message}"
    return Result(ok, happened, facts={"status": response.status_code, "code": code})


def complete_proposal(run: Run) -> Result:
    bager = run.customer("B")
    body = plan_body(
        bager,
        "proposal_meeting",
        "physical",
        "Oplæg: annoncering 2027",
        slot(workday(today(), 1), 13),
    )
    meeting = plan(run, "proposal_B", body)
    follow_up = plan_body(
        bager, "status_meeting", "physical", "Opfølgning på oplæg", slot(workday(today(), 10), 9)
    )
    completion = {
        "note": "Oplæg gennemgået; kunden vil have print og web i 2027, budget afklares",
        "next_step": "Statusmøde om 2 uger: underskrift og startdato",
        "attachments": [
            {
                "kind": "proposal",
                "filename": "oplaeg-2027.pdf",
                "media_type": "application/pdf",
                "size": len(PROPOSAL),
                "sha256": hashlib.sha256(PROPOSAL).hexdigest(),
                "uri": f"https://dokumenter.example.dk/{run.run}/oplaeg-2027.pdf",
            }
        ],
        "next_activity": follow_up,
    }
    path = f"/activities/{meeting['id']}/complete"
    done = expect(run.api.post(ANNA, "activity", path, completion, version=meeting["version"]), 200)
    run.activities["proposal_B"] = done
    next_id = done.get("next_activity_id")
    following = (
        expect(run.api.get(ANNA, "activity", f"/activities/{next_id}"), 200) if next_id else {}
    )
    if following:
        run.activities["next_B"] = following
    kinds = [a["kind"] for a in done["attachments"]]
    ok = (
        done["status"] == "completed"
        and "proposal" in kinds
        and following.get("status") == "planned"
    )
    happened = (
        f"{done['type_label']} with {bager.name} {done['status']}, attachments: "
        f"{', '.join(a['filename'] + ' (' + a['kind'] + ')' for a in done['attachments'])}; "
        + (
            f"next: {described(following, bager)}, {following['status']}"
            if following
            else "no next activity"
        )
    )
    return Result(ok, happened, facts={"status": done["status"], "next": bool(following)})


def refuse_last_activity(run: Run) -> Result:
    aarhus = run.customer("AG")
    # R8 is judged with the activity service's copy of the customer, which segmentation's
    # snapshots update asynchronously: wait until that copy says "prioritized".
    known = poll(
        lambda: aarhus.customer_id in r8_gaps(run),
        deadline_s=run.wait_s,
    )
    if not known.value:
        return Result(
            False,
            f"the activity service did not know {aarhus.name} as prioritized within {known.took()}",
        )
    body = plan_body(
        aarhus, "status_meeting", "phone", "Årsaftalens status", slot(workday(today(), 3), 9)
    )
    meeting = plan(run, "status_AG", body)
    completion = {"note": "Årsaftalen kører efter planen", "next_step": "Ingen aftalt endnu"}
    path = f"/activities/{meeting['id']}/complete"
    response = run.api.post(ANNA, "activity", path, completion, version=meeting["version"])
    code, message = error_of(response)
    ok = response.status_code == 409 and code == "R8"
    happened = (
        f"activity knew {aarhus.name} is prioritized after {known.took()}; completing its only "
        f"future activity ({meeting['type_label']}) without a next one: "
        f"{response.status_code} {code}: {message}"
    )
    return Result(ok, happened, facts={"status": response.status_code, "code": code})
