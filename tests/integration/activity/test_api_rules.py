"""Rules R3, R4, R5, R7, R9 and R10 over HTTP, on SQLite and PostgreSQL (R1, R2, R6 and R8
are in test_api.py): each refusal names its rule and stores nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from activity.api import ActivityApi, create_app
from activity.application import ActivityApplication
from crm_contracts.enums import Segment
from crm_platform.auth import Authenticator, AuthSettings
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.people import ANNA

ANNA_H = {"X-Dev-User": ANNA.user_id, "X-Dev-Roles": "consultant"}
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


@pytest.fixture
def client(app: ActivityApplication, add_customer: Callable[..., Any]) -> Iterator[TestClient]:
    add_customer("c1", "Bager Hansen ApS", Segment.C)
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
        "occurred_at": (clock.now - timedelta(hours=1)).isoformat(),
        "note": "Kunden overvejer en kampagne til åbningen af den nye butik i maj",
    }
    return body | fields


def refused(
    client: TestClient,
    app: ActivityApplication,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
) -> dict[str, Any]:
    before = app.recorder.max_notification_id()
    response = client.post(path, json=body, headers=ANNA_H)
    assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    assert app.recorder.max_notification_id() == before
    return dict(response.json())


def test_R3_an_unbooked_physical_registration_must_be_an_unannounced_visit(
    client: TestClient,
    app: ActivityApplication,
    clock: ManualClock,
) -> None:
    error = refused(
        client,
        app,
        "/activities/registrations",
        register(clock, type="status_meeting", channel="physical"),
        422,
        "R3",
    )
    assert "unannounced_visit" in error["detail"]
    response = client.post(
        "/activities/registrations",
        headers=ANNA_H,
        json=register(
            clock, type="unannounced_visit", channel="physical", note="Afleverede salgsbrev"
        ),
    )
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["registered"]) == ("completed", True)


def test_R4_an_unplanned_contact_needs_a_note_that_adds_value(
    client: TestClient,
    app: ActivityApplication,
    clock: ManualClock,
) -> None:
    for note in ("ringede", "Ringede, ingen svar. OK.", "ok ok ok ok ok ok ok ok ok ok"):
        refused(client, app, "/activities/registrations", register(clock, note=note), 422, "R4")
    response = client.post("/activities/registrations", json=register(clock), headers=ANNA_H)
    assert response.status_code == 201


def test_R5_a_plan_needs_a_subject_and_a_future_time(
    client: TestClient,
    app: ActivityApplication,
    clock: ManualClock,
) -> None:
    refused(client, app, "/activities", plan(clock, subject="   "), 422, "R5")
    refused(client, app, "/activities", plan(clock, days=-1), 422, "starts_at")


def test_R7_completion_plans_the_next_activity_in_the_same_transaction(
    client: TestClient,
    app: ActivityApplication,
    clock: ManualClock,
) -> None:
    first = client.post("/activities", json=plan(clock), headers=ANNA_H).json()
    bad_next = plan(clock, days=-2)
    refused(
        client,
        app,
        f"/activities/{first['id']}/complete",
        {"note": "Godt møde", "next_step": "Oplæg", "next_activity": bad_next},
        422,
        "starts_at",
    )
    assert client.get(f"/activities/{first['id']}", headers=ANNA_H).json()["status"] == "planned"
    response = client.post(
        f"/activities/{first['id']}/complete",
        headers=ANNA_H,
        json={
            "note": "Godt møde",
            "next_step": "Oplæg",
            "next_activity": plan(clock, days=14, subject="Oplæg"),
        },
    )
    assert response.status_code == 200
    follow_up = client.get(
        f"/activities/{response.json()['next_activity_id']}", headers=ANNA_H
    ).json()
    assert (follow_up["status"], follow_up["subject"]) == ("planned", "Oplæg")


def test_R9_a_proposal_meeting_completes_only_with_its_proposal(
    client: TestClient,
    app: ActivityApplication,
    clock: ManualClock,
) -> None:
    meeting = client.post(
        "/activities",
        headers=ANNA_H,
        json=plan(clock, type="proposal_meeting", channel="physical", subject="Oplæg"),
    ).json()
    completion = {"note": "Oplægget blev godt modtaget", "next_step": "Ring om svar"}
    refused(client, app, f"/activities/{meeting['id']}/complete", completion, 409, "R9")
    response = client.post(
        f"/activities/{meeting['id']}/attachments", json=PROPOSAL, headers=ANNA_H
    )
    assert response.status_code == 201
    response = client.post(f"/activities/{meeting['id']}/complete", json=completion, headers=ANNA_H)
    assert (response.status_code, response.json()["attachments"][0]["kind"]) == (200, "proposal")


def test_R10_a_discovery_meeting_completes_only_with_the_full_profile(
    client: TestClient,
    app: ActivityApplication,
    clock: ManualClock,
) -> None:
    meeting = client.post(
        "/activities",
        headers=ANNA_H,
        json=plan(clock, type="discovery_meeting", channel="physical", subject="Afdækning"),
    ).json()
    completion = {"note": "Afdækket", "next_step": "Oplæg i maj"}
    error = refused(
        client,
        app,
        f"/activities/{meeting['id']}/complete",
        completion | {"discovery_profile": {**PROFILE, "competitors": None, "strategy": " "}},
        422,
        "R10",
    )
    assert error["missing"] == ["competitors", "strategy"]
    response = client.post(
        f"/activities/{meeting['id']}/complete",
        headers=ANNA_H,
        json=completion | {"discovery_profile": PROFILE},
    )
    assert response.status_code == 200
    profile = client.get("/customers/c1/discovery-profile", headers=ANNA_H).json()
    assert (profile["revision"], profile["profile"]["potential_dkk"]) == (1, "150000.00")


def test_a_completion_note_over_10000_characters_is_refused(
    client: TestClient,
    app: ActivityApplication,
    clock: ManualClock,
) -> None:
    meeting = client.post("/activities", json=plan(clock), headers=ANNA_H).json()
    error = refused(
        client,
        app,
        f"/activities/{meeting['id']}/complete",
        {"note": "x" * 10_001, "next_step": "Ring"},
        422,
        "validation_error",
    )
    assert "body.note" in error["detail"]
