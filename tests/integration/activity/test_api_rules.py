"""The guide's rules over HTTP, on SQLite and PostgreSQL: one refusal per rule (R1–R10) with
its status, code, rule and field, storing nothing; then what #13 opened that needs the whole
service: booked registrations, `held_at`, a cancellation with its replacement.

Every case of every rule is in the table tests of tests/unit/activity; what is here is only
the way a rule reaches a client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from activity.api import ActivityApi, create_app
from activity.application import ActivityApplication
from activity.domain import CustomerFile
from activity.rules import DISCOVERY_FIELDS
from crm_contracts.enums import Segment
from crm_platform.auth import Authenticator, AuthSettings
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.people import ANNA

ANNA_H = {"X-Dev-User": ANNA.user_id, "X-Dev-Roles": "consultant"}
PRIORITIZED_NAME = "Tømrer Olsen ApS"
PROFILE = {
    "business": "Bageri med tre butikker",
    "situation": "Vokser i Aarhus",
    "challenges": "Få kender den nye butik",
    "goals_and_plans": "Fjerde butik i 2027",
    "advertising_needs": "Lokal synlighed",
    "potential_dkk": "150000.00",
    "competitors": "Lagkagehuset",
    "strategy": "Kvalitet og nærhed",
    "unique_traits": "Økologisk surdej",
}
PROPOSAL = {
    "kind": "proposal",
    "filename": "oplæg.pdf",
    "media_type": "application/pdf",
    "size": 120_000,
    "sha256": "a" * 64,
    "uri": "https://dokumenter.example.dk/1",
}
OUTCOME = {"note": "Kunden vil fortsætte kampagnen i 2027", "next_step": "Send tilbud"}


@pytest.fixture
def client(app: ActivityApplication, add_customer: Callable[..., Any]) -> Iterator[TestClient]:
    add_customer("c1", "Bager Hansen ApS", Segment.C)
    add_customer("c-prio", PRIORITIZED_NAME, Segment.A)
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    with TestClient(
        create_app(ActivityApi(app=app, auth=auth)), raise_server_exceptions=False
    ) as test_client:
        yield test_client


def plan(clock: ManualClock, **fields: Any) -> dict[str, Any]:
    start = clock.now + timedelta(days=fields.pop("days", 1))
    body = {
        "customer_id": "c1",
        "owner": ANNA.user_id,
        "type": "status_meeting",
        "channel": "phone",
        "subject": "Status",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
    }
    return body | fields


def register(clock: ManualClock, **fields: Any) -> dict[str, Any]:
    body = {
        "customer_id": "c1",
        "owner": ANNA.user_id,
        "type": "contact",
        "channel": "phone",
        "held_at": (clock.now - timedelta(hours=1)).isoformat(),
        "note": "Kunden overvejer en kampagne til åbningen af den nye butik i maj",
    }
    return body | fields


def planned(client: TestClient, clock: ManualClock, **fields: Any) -> dict[str, Any]:
    response = client.post("/activities", json=plan(clock, **fields), headers=ANNA_H)
    assert response.status_code == 201, response.json()
    return dict(response.json())


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --------------------------------------------------------------------------- one refusal a rule


@dataclass(frozen=True)
class Refusal:
    """A request a rule refuses: `path` may name `{id}`, an activity planned with `setup`."""

    rule: str
    status: int
    field: str
    path: str
    body: Callable[[ManualClock], dict[str, Any]]
    setup: dict[str, Any] | None = None
    detail: str = ""  # a phrase the problem's detail contains


REFUSALS = [
    Refusal(  # completed, but nobody answered: it is moved instead
        "R1",
        409,
        "note",
        "/activities/{id}/complete",
        lambda clock: {"note": "Ringede, ingen svar", "next_step": "Ring igen i morgen"},
        setup={"type": "contact", "channel": "phone"},
        detail="move",
    ),
    Refusal(
        "R2",
        422,
        "type",
        "/activities/{id}/retype",
        lambda clock: {"type": "status_meeting"},
        setup={},
    ),
    Refusal(
        "R3",
        422,
        "type",
        "/activities/registrations",
        lambda clock: register(clock, type="status_meeting", channel="physical"),
        detail="unannounced_visit",
    ),
    Refusal(
        "R4",
        422,
        "note",
        "/activities/registrations",
        lambda clock: register(clock, note="Ringede, ingen svar. Ok."),
    ),
    Refusal(
        "R5",
        422,
        "ends_at",
        "/activities",
        lambda clock: plan(clock) | {"ends_at": plan(clock)["starts_at"]},
    ),
    Refusal(
        "R6",
        422,
        "held_at",
        "/activities/{id}/complete",
        lambda clock: OUTCOME | {"held_at": (clock.now + timedelta(hours=1)).isoformat()},
        setup={},
    ),
    Refusal(
        "R7",
        422,
        "next_activity.customer_id",
        "/activities/{id}/complete",
        lambda clock: OUTCOME | {"next_activity": plan(clock, days=14, customer_id="c-prio")},
        setup={},
    ),
    Refusal(
        "R8",
        409,
        "next_activity",
        "/activities/{id}/cancel",
        lambda clock: {"reason": "Dobbeltbooket"},
        setup={"customer_id": "c-prio"},
        detail=PRIORITIZED_NAME,
    ),
    Refusal(
        "R9",
        409,
        "attachments",
        "/activities/registrations",
        lambda clock: register(clock, type="proposal_meeting", channel="physical", booked=True),
    ),
    Refusal(
        "R10",
        422,
        "discovery_profile",
        "/activities/{id}/complete",
        lambda clock: OUTCOME,
        setup={"type": "discovery_meeting", "channel": "video"},
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.rule for c in REFUSALS])
def test_a_rule_refuses_with_its_status_code_and_field_and_stores_nothing(
    client: TestClient, app: ActivityApplication, clock: ManualClock, case: Refusal
) -> None:
    activity = planned(client, clock, **case.setup) if case.setup is not None else None
    path = case.path.format(id=activity["id"]) if activity else case.path
    before = app.recorder.max_notification_id()

    response = client.post(path, json=case.body(clock), headers=ANNA_H)

    problem = response.json()
    assert response.status_code == case.status, problem
    assert response.headers["content-type"] == "application/problem+json"
    assert (problem["code"], problem["rule"], problem["field"]) == (
        case.rule,
        case.rule,
        case.field,
    )
    assert problem["type"].endswith(f":{case.rule}")
    assert case.detail in problem["detail"]
    assert app.recorder.max_notification_id() == before
    if activity:
        now = client.get(f"/activities/{activity['id']}", headers=ANNA_H).json()
        assert (now["status"], now["version"]) == ("planned", 1)


def test_R10_names_every_missing_field_of_the_profile(
    client: TestClient, clock: ManualClock
) -> None:
    meeting = planned(client, clock, type="discovery_meeting", channel="physical")
    response = client.post(
        f"/activities/{meeting['id']}/complete",
        headers=ANNA_H,
        json=OUTCOME | {"discovery_profile": {**PROFILE, "competitors": None, "strategy": " "}},
    )
    assert (response.status_code, response.json()["missing"]) == (
        422,
        ["competitors", "strategy"],
    )
    response = client.post(f"/activities/{meeting['id']}/complete", headers=ANNA_H, json=OUTCOME)
    assert response.json()["missing"] == list(DISCOVERY_FIELDS)


# --------------------------------------------------------------------------- what the rules let in


def test_R3_a_booked_physical_meeting_is_registered_as_the_meeting_it_was(
    client: TestClient, app: ActivityApplication, clock: ManualClock
) -> None:
    held_at = clock.now - timedelta(hours=3)
    response = client.post(
        "/activities/registrations",
        headers=ANNA_H,
        json=register(
            clock,
            type="status_meeting",
            channel="physical",
            booked=True,
            held_at=held_at.isoformat(),
            note="Gennemgik kampagnen",  # physical: no value test (R4 is for contacts)
        ),
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["type"], body["channel"], body["status"], body["registered"], body["booked"]) == (
        "status_meeting",
        "physical",
        "completed",
        True,
        True,
    )
    assert instant(body["completed_at"]) == held_at
    assert app.activity(UUID(body["id"])).booked is True
    [registered] = client.get(f"/activities/{body['id']}/history", headers=ANNA_H).json()
    assert registered["details"]["booked"] is True

    # Not booked, the same visit is an unannounced one.
    response = client.post(
        "/activities/registrations",
        headers=ANNA_H,
        json=register(clock, type="unannounced_visit", channel="physical", note="Kiggede ind"),
    )
    assert (response.status_code, response.json()["booked"]) == (201, False), response.json()
    assert app.activity(UUID(response.json()["id"])).booked is False


def test_R9_a_proposal_meeting_is_registered_with_its_proposal(
    client: TestClient, app: ActivityApplication, clock: ManualClock
) -> None:
    response = client.post(
        "/activities/registrations",
        headers=ANNA_H,
        json=register(
            clock,
            type="proposal_meeting",
            channel="physical",
            booked=True,
            subject="Oplæg til forårskampagnen",
            attachments=[PROPOSAL],
        ),
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["type"], body["status"]) == ("proposal_meeting", "completed")
    assert [(a["kind"], a["filename"]) for a in body["attachments"]] == [("proposal", "oplæg.pdf")]
    history = client.get(f"/activities/{body['id']}/history", headers=ANNA_H).json()
    assert [h["event"] for h in history] == ["registered", "attachment_added"]


def test_R4_an_unplanned_contact_that_states_a_fact_is_registered(
    client: TestClient, clock: ManualClock
) -> None:
    response = client.post(
        "/activities/registrations",
        headers=ANNA_H,
        json=register(clock, note="Ringede. Budget 2027: 80.000 kr"),
    )
    assert response.status_code == 201, response.json()
    assert response.json()["note"] == "Ringede. Budget 2027: 80.000 kr"


def test_a_registration_says_when_it_was_held_not_when_it_occurred(
    client: TestClient, app: ActivityApplication, clock: ManualClock
) -> None:
    body = register(clock)
    body["occurred_at"] = body.pop("held_at")
    before = app.recorder.max_notification_id()
    response = client.post("/activities/registrations", headers=ANNA_H, json=body)
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert sorted(e["field"] for e in response.json()["errors"]) == [
        "body.held_at",
        "body.occurred_at",
    ]
    assert app.recorder.max_notification_id() == before


def test_R6_a_completion_counts_from_when_it_was_held(
    client: TestClient, clock: ManualClock
) -> None:
    meeting = planned(client, clock)
    held_at = instant(meeting["starts_at"])
    clock.advance(days=2)  # recorded two days after the meeting

    response = client.post(
        f"/activities/{meeting['id']}/complete",
        headers=ANNA_H,
        json=OUTCOME | {"held_at": held_at.isoformat()},
    )

    assert response.status_code == 200, response.json()
    assert instant(response.json()["completed_at"]) == held_at
    stored = client.get(f"/activities/{meeting['id']}", headers=ANNA_H).json()
    assert instant(stored["completed_at"]) == held_at
    # Without held_at it was held when it is recorded.
    other = planned(client, clock)
    response = client.post(f"/activities/{other['id']}/complete", headers=ANNA_H, json=OUTCOME)
    assert instant(response.json()["completed_at"]) == clock.now


def test_R7_R8_completion_plans_the_next_activity_in_the_same_save(
    client: TestClient, clock: ManualClock
) -> None:
    first = planned(client, clock, customer_id="c-prio")
    follow_up = plan(clock, days=14, customer_id="c-prio", subject="Oplæg")
    response = client.post(
        f"/activities/{first['id']}/complete",
        headers=ANNA_H,
        json=OUTCOME | {"next_activity": follow_up},
    )
    assert response.status_code == 200, response.json()
    stored = client.get(f"/activities/{response.json()['next_activity_id']}", headers=ANNA_H)
    assert (stored.json()["status"], stored.json()["subject"]) == ("planned", "Oplæg")


def test_R8_a_cancellation_plans_its_replacement_in_the_same_save(
    client: TestClient, app: ActivityApplication, clock: ManualClock
) -> None:
    last = planned(client, clock, customer_id="c-prio")
    replacement = plan(clock, days=21, customer_id="c-prio", subject="Status, ny dato")

    response = client.post(
        f"/activities/{last['id']}/cancel",
        headers=ANNA_H,
        json={"reason": "Kunden er syg", "next_activity": replacement},
    )

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "cancelled"
    cancelled = client.get(f"/activities/{last['id']}/history", headers=ANNA_H).json()[-1]
    assert (cancelled["event"], cancelled["why"]) == ("cancelled", "Kunden er syg")
    new_id = cancelled["details"]["next_activity_id"]
    new = client.get(f"/activities/{new_id}", headers=ANNA_H).json()
    assert (new["status"], new["subject"], new["customer_id"]) == (
        "planned",
        "Status, ny dato",
        "c-prio",
    )
    file = app.repository.get(CustomerFile.id_for("c-prio"))
    assert file.open_activities == {UUID(new_id): instant(replacement["starts_at"])}


def test_R10_a_discovery_meeting_records_the_customer_s_profile(
    client: TestClient, clock: ManualClock
) -> None:
    meeting = planned(client, clock, type="discovery_meeting", channel="physical")
    response = client.post(
        f"/activities/{meeting['id']}/complete",
        headers=ANNA_H,
        json=OUTCOME | {"discovery_profile": PROFILE},
    )
    assert response.status_code == 200, response.json()
    profile = client.get("/customers/c1/discovery-profile", headers=ANNA_H).json()
    assert (profile["revision"], profile["profile"]["potential_dkk"]) == (1, "150000.00")


def test_a_completion_note_over_10000_characters_is_refused(
    client: TestClient, app: ActivityApplication, clock: ManualClock
) -> None:
    meeting = planned(client, clock)
    before = app.recorder.max_notification_id()
    response = client.post(
        f"/activities/{meeting['id']}/complete",
        json={"note": "x" * 10_001, "next_step": "Ring"},
        headers=ANNA_H,
    )
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert "body.note" in response.json()["detail"]
    assert app.recorder.max_notification_id() == before
