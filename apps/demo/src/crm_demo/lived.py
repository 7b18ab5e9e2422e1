"""Steps 9–12: the guide as consultants live it — a booked meeting registered after the fact,
an unanswered call that is no completion, an R8 gap opening and closing, going live mid-year.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any, Final

from crm_demo.activities import plan, plan_body
from crm_demo.client import ANNA, MIA, error_of, expect
from crm_demo.customers import CSV_COLUMNS, r8_gaps
from crm_demo.poll import poll
from crm_demo.reports import attainment_lines
from crm_demo.run import Customer, Result, Run
from crm_demo.timing import now, shown, slot, today, workday

NO_ANSWER_NOTE: Final = "Ringede, ingen svar"


def register_booked_meeting(run: Run) -> Result:
    alfa = run.customer("A")
    body = {
        "customer_id": alfa.customer_id,
        "owner": ANNA.user,
        "type": "status_meeting",
        "channel": "physical",
        "booked": True,
        "held_at": (now() - timedelta(hours=2)).isoformat(),
        "subject": "Status hos kunden (aftalt i telefonen)",
        "note": "Kampagnen kører; kunden overvejer en sommerudgave i print",
        "next_step": "Tilbud på sommerudgave inden fredag",
    }
    held = expect(run.api.post(ANNA, "activity", "/activities/registrations", body), 201)
    run.activities["booked_A"] = held
    ok = (held["type"], held["booked"], held["status"]) == ("status_meeting", True, "completed")
    happened = (
        f"{held['type_label']} ({held['channel_label']}) with {alfa.name}, booked with the "
        f"customer but never entered beforehand, held {shown(held['completed_at'])}: "
        f"registered as what it was, status {held['status']}; it counts towards the targets"
    )
    return Result(ok, happened, facts={"type": held["type"], "booked": held["booked"]})


def unanswered_call(run: Run) -> Result:
    carlsen = run.customer("C")
    body = plan_body(
        carlsen, "sales_meeting", "phone", "Tilbud på julekampagne", slot(workday(today(), 2), 10)
    )
    call = plan(run, "call_C", body)
    path = f"/activities/{call['id']}/complete"
    completion = {"note": NO_ANSWER_NOTE, "next_step": "Ring igen"}
    refused = run.api.post(ANNA, "activity", path, completion, version=call["version"])
    code, message = error_of(refused)
    later = slot(workday(today(), 4), 10)
    move = {"starts_at": later[0].isoformat(), "reason": "no_answer"}
    moved = expect(
        run.api.post(
            ANNA, "activity", f"/activities/{call['id']}/move", move, version=call["version"]
        ),
        200,
    )
    run.activities["call_C"] = moved
    ok = refused.status_code == 409 and code == "R1" and moved["status"] == "planned"
    happened = (
        f"completing the call with the note '{NO_ANSWER_NOTE}': {refused.status_code} {code}: "
        f"{message}; moved instead to {shown(moved['starts_at'])} (no_answer)"
    )
    return Result(ok, happened, facts={"status": refused.status_code, "code": code})


def r8_gap(run: Run) -> Result:
    dahl = run.customer("D")
    raised = expect(
        run.api.request(
            MIA,
            "PUT",
            "segmentation",
            f"/customers/{dahl.customer_id}/potential",
            json={"amount_dkk": "450000.00", "note": "Ny klinik i Vejle"},
        ),
        200,
    )
    opened = poll(lambda: r8_gaps(run).get(dahl.customer_id), deadline_s=run.wait_s)
    if not opened.value:
        return Result(False, f"no R8 gap for {dahl.name} within {opened.took()}")
    gap: dict[str, Any] = opened.value
    body = plan_body(
        dahl, "status_meeting", "physical", "Plan for den nye klinik", slot(workday(today(), 5), 9)
    )
    plan(run, "status_D", body)
    closed = poll(lambda: dahl.customer_id not in r8_gaps(run), deadline_s=run.wait_s)
    ok = raised["segment"] == "A" and gap["why"] == "became_prioritized" and bool(closed.value)
    happened = (
        f"{dahl.name}'s potential raised to 450.000 kr: segment {run.segment_label('A')}, "
        f"prioritized; after {opened.took()} the R8 report listed it since "
        f"{shown(gap['since'])} ({gap['why']}, owner {gap['owner']}); a meeting planned, "
        + (
            f"and the gap closed after {closed.took()}"
            if closed.value
            else f"but the gap was still open after {closed.took()}"
        )
    )
    return Result(ok, happened, facts={"why": gap["why"], "closed": bool(closed.value)})


def going_live(run: Run) -> Result:
    """Two A customers brought over from the previous CRM late in the year: one with the day
    its segment started, one without; the first one's held status meeting imported too."""
    year = today().year
    since, fresh = (
        Customer("E", f"{run.run}-E", "Esbjerg El", "500000.00", "A", True),
        Customer("F", f"{run.run}-F", "Fanø Fisk", "500000.00", "A", True),
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow((*CSV_COLUMNS, "segment_since"))
    for customer, started in ((since, f"{year}-01-01"), (fresh, "")):
        name, potential = customer.name, customer.potential
        writer.writerow((customer.customer_id, name, "", ANNA.user, potential, "", "", started))
    imported = expect(
        run.api.request(
            MIA,
            "POST",
            "segmentation",
            "/customers/import",
            content=out.getvalue().encode(),
            headers={"Content-Type": "text/csv; charset=utf-8"},
        ),
        200,
    )
    run.customers.update({"E": since, "F": fresh})
    held_at = (now() - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    history = (
        "external_id,customer_id,owner,type,channel,held_at,note\r\n"
        f"{run.run}-old-1,{since.customer_id},{ANNA.user},Statusmøde,Fysisk,"
        f"{held_at.isoformat()},Gennemgang af årets annoncering\r\n"
    )

    def brought() -> dict[str, Any] | None:
        answer = run.api.request(
            MIA,
            "POST",
            "activity",
            "/imports",
            content=history.encode(),
            headers={"Content-Type": "text/csv; charset=utf-8"},
        )
        result = expect(answer, 200)
        return result if result["imported"] + result["unchanged"] == 1 else None

    activities = poll(brought, deadline_s=run.wait_s)
    if activities.value:
        run.activities["imported_E"] = {
            "id": f"{run.run}-old-1",  # its id in the previous CRM; never in a calendar
            "customer_id": since.customer_id,
            "type": "status_meeting",
            "status": "completed",
        }

    def status_target(customer: Customer) -> str | None:
        lines = attainment_lines(run, customer.customer_id, year) or []
        line = next((x for x in lines if x["type"] == "status_meeting"), None)
        return line["min"] if line else None

    full, prorated = status_target(since), status_target(fresh)
    ok = (
        imported["imported"] == 2
        and bool(activities.value)
        and full is not None
        and prorated is not None
        and float(full) > float(prorated)
    )
    happened = (
        f"{imported['imported']} customers imported in {today():%B}: {since.name} (A since "
        f"{year}-01-01) has {full} status meetings as this year's target, {fresh.name} "
        f"(A from the import) {prorated}, pro-rated from the import day; "
        + (
            f"{since.name}'s held status meeting of {shown(held_at)} imported from the "
            "previous CRM (counted in step 13)"
            if activities.value
            else f"its history was not imported within {activities.took()}"
        )
    )
    return Result(ok, happened, facts={"full": full, "prorated": prorated})
