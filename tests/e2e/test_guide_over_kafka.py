"""The guide as consultants live it, across the three services over PostgreSQL and Kafka
(the production-like stack, `make up`), with calendar-sync writing to the Graph fake:

- a C customer's discovery meeting finds an A potential: an R8 gap opens the moment the
  customer is prioritized without a future activity, and closes when a meeting is planned;
  both are published on `crm.activity.r8-gaps.v1`;
- the customer gets a new consultant: the open activity moves to the new owner's calendar;
- going live: the previous CRM's held activities, imported, count in attainment.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaConsumer

from tests.e2e.stack_fixture import Caller, eventually, graph, ok, run, stack, stack_prefix
from tests.fakes import GraphFake

pytestmark = pytest.mark.timeout(300)

PROFILE = {
    "business": "Møbelforretning med to butikker",
    "situation": "Annoncerer i print, ikke online",
    "challenges": "Yngre kunder finder dem ikke",
    "goals_and_plans": "Webshop til efteråret",
    "advertising_needs": "Kampagne i print og online",
    "potential_dkk": "400000.00",
    "competitors": "To kædebutikker",
    "strategy": "Kvalitet og rådgivning",
    "unique_traits": "Eget værksted",
}


__all__ = ["graph", "run", "stack", "stack_prefix"]  # module fixtures


def plan_body(
    customer_id: str, owner: str, type_: str, hours: float, subject: str
) -> dict[str, Any]:
    starts = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2 + hours)
    return {
        "customer_id": customer_id,
        "owner": owner,
        "type": type_,
        "channel": "physical",
        "subject": subject,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
    }


def gap(caller: Caller, customer_id: str) -> dict[str, Any] | None:
    rows = ok(caller.activity.get("/reports/without-future-activity"), 200)
    return next((r for r in rows if r["customer_id"] == customer_id), None)


def gap_messages(bootstrap: str, topic: str, customer_id: str) -> list[dict[str, Any]]:
    """The R8 gap messages of one customer on the topic so far (read from its start)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    try:
        found = []
        for record in consumer:
            if record.key is not None and record.key.decode() == customer_id:
                headers = {k: v.decode() for k, v in record.headers}
                found.append({"type": headers.get("ce_type"), **json.loads(record.value)})
        return found
    finally:
        consumer.close()


def test_an_r8_gap_opens_when_a_discovery_meeting_makes_a_c_customer_prioritized(
    stack: Any, kafka_bootstrap: str, stack_prefix: str, run: str
) -> None:
    owner = f"anna.{run}@example.dk"
    customer = f"c-{run}"
    mia = Caller(stack, f"mia.{run}@example.dk", ["sales_manager"])
    anna = Caller(stack, owner, ["consultant"])
    body = {"customer_id": customer, "name": "Aarhus Møbler", "owner": owner}
    created = ok(mia.segmentation.post("/customers", json={**body, "potential_dkk": "60000"}), 201)
    assert (created["segment"], created["prioritized"]) == ("C", False)

    def planned() -> dict[str, Any] | None:
        answer = anna.activity.post(
            "/activities", json=plan_body(customer, owner, "discovery_meeting", 0, "Afdækning")
        )
        return answer.json() if answer.status_code == 201 else None

    meeting = eventually(
        stack, planned, message="activity knows the customer", explain=["activity-workers"]
    )
    done = ok(
        anna.activity.post(
            f"/activities/{meeting['id']}/complete",
            json={
                "note": "Stor potentiale: vil annoncere bredt i 2027",
                "next_step": "Oplæg i januar",
                "discovery_profile": PROFILE,
            },
        ),
        200,
    )
    assert done["status"] == "completed"  # C: not prioritized, so no next activity needed

    opened = eventually(
        stack,
        lambda: gap(anna, customer),
        message="an R8 gap once the discovery meeting made the customer A",
        explain=["segmentation-workers", "segmentation-relay", "activity-workers"],
    )
    assert (opened["segment"], opened["why"], opened["owner"]) == ("A", "became_prioritized", owner)
    assert opened["name"] == "Aarhus Møbler"

    ok(
        anna.activity.post(
            "/activities", json=plan_body(customer, owner, "proposal_meeting", 24, "Oplæg 2027")
        ),
        201,
    )
    eventually(
        stack,
        lambda: gap(anna, customer) is None,
        message="the gap closed by the plan",
        explain=["activity-workers"],
    )
    topic = f"{stack_prefix}.crm.activity.r8-gaps.v1"
    messages = eventually(
        stack,
        lambda: (m := gap_messages(kafka_bootstrap, topic, customer)) and len(m) >= 2 and m,
        message="the gap's opening and closing on the topic",
        explain=["activity-relay"],
    )
    assert [(m["type"], m["why"]) for m in messages] == [
        ("crm.future_activity_gap.opened.v1", "became_prioritized"),
        ("crm.future_activity_gap.closed.v1", "planned"),
    ]
    for caller in (mia, anna):
        caller.close()


def test_a_new_consultant_gets_the_open_activity_in_their_calendar(
    stack: Any, graph: GraphFake, run: str
) -> None:
    anna_id, bo_id = f"anna.{run}@example.dk", f"bo.{run}@example.dk"
    customer = f"o-{run}"
    mia = Caller(stack, f"mia.{run}@example.dk", ["sales_manager"])
    anna = Caller(stack, anna_id, ["consultant"])
    body = {"customer_id": customer, "name": "Odder Cykler", "owner": anna_id}
    ok(mia.segmentation.post("/customers", json={**body, "potential_dkk": "20000"}), 201)

    def planned() -> dict[str, Any] | None:
        answer = anna.activity.post(
            "/activities", json=plan_body(customer, anna_id, "sales_meeting", 0, "Forårssalg")
        )
        return answer.json() if answer.status_code == 201 else None

    meeting = eventually(stack, planned, message="activity knows the customer")
    eventually(
        stack,
        lambda: meeting["id"] in graph.crm_events(anna_id),
        message="the meeting in Anna's Outlook",
        explain=["calendar-sync-consumer"],
    )

    ok(mia.segmentation.put(f"/customers/{customer}/owner", json={"owner": bo_id}), 200)
    eventually(
        stack,
        lambda: (
            meeting["id"] in graph.crm_events(bo_id)
            and meeting["id"] not in graph.crm_events(anna_id)
        ),
        message="the meeting moved to Bo's Outlook",
        explain=["segmentation-relay", "activity-workers", "calendar-sync-consumer"],
    )
    moved = ok(anna.activity.get(f"/activities/{meeting['id']}"), 200)
    assert moved["owner"] == bo_id
    history = ok(anna.activity.get(f"/activities/{meeting['id']}/history"), 200)
    assert history[-1]["why"] == "Kunden har fået ny ansvarlig konsulent"
    for caller in (mia, anna):
        caller.close()


def test_imported_history_counts_in_attainment(stack: Any, run: str) -> None:
    anna_id = f"anna.{run}@example.dk"
    customer = f"i-{run}"
    mia = Caller(stack, f"mia.{run}@example.dk", ["sales_manager"])
    body = {"customer_id": customer, "name": "Silkeborg Sko", "owner": anna_id}
    ok(mia.segmentation.post("/customers", json={**body, "potential_dkk": "200000"}), 201)
    held = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    csv = (
        "external_id,customer_id,owner,type,channel,held_at,note\n"
        f"old-{run},{customer},{anna_id},status_meeting,physical,{held},Gennemgik planen\n"
    )

    def imported() -> dict[str, Any] | None:
        answer = mia.activity.post(
            "/imports", content=csv.encode(), headers={"content-type": "text/csv"}
        )
        result = ok(answer, 200)
        return result if result["imported"] + result["unchanged"] == 1 else None

    eventually(stack, imported, message="activity knows the customer and imports its history")

    def status_meetings_held() -> int | None:
        answer = mia.segmentation.get(f"/customers/{customer}/attainment")
        if answer.status_code != 200:
            return None
        line = next(x for x in answer.json()["lines"] if x["type"] == "status_meeting")
        return int(line["actual"])

    eventually(
        stack,
        lambda: status_meetings_held() == 1,
        message="the imported status meeting counted",
        explain=["activity-relay", "segmentation-workers"],
    )
    mia.close()
