"""The Graph fake's behaviours, as a contract the real Microsoft Graph must also meet.

Each test speaks plain HTTP to a target and checks one behaviour: either one Graph documents
(the page is named), or one of the open points where the fake follows a switch (`Behaviour`,
docs/graph.md), in which case it checks the switch's setting.

Targets: the fake, always (so the contract and the fake cannot drift apart); a Microsoft 365
tenant with `make graph-contract` (GRAPH_CONTRACT=1), never in `make test`:

    GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET   an app registration with the
                                                            application permission
                                                            Calendars.ReadWrite, consented
    GRAPH_CONTRACT_MAILBOX                                  a test mailbox it may write to
    GRAPH_CONTRACT_OTHER_MAILBOX (optional)                 a second one (transactionId scope)

A test against the tenant that fails on an open point names the switch to change: record the
tenant's answer there and in docs/graph.md. Every event made is deleted (twice: out of
Deleted Items too) when its test ends; they sit in 2031 and say "delete me" meanwhile.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from calendar_sync.graph_auth import (
    ClientCredentialsTokenProvider,
    MsalTokenProvider,
    TokenProvider,
)

from tests.fakes import Behaviour, GraphFake

PROP = "String {6d0c7d7e-3f8a-4e0b-9a51-2b6c4f1e8a37} Name CrmActivityId"
PARENT = "singleValueExtendedProperties($filter=id eq 'Binary 0x0E09')"
ENTRY = "singleValueExtendedProperties($filter=id eq 'Binary 0x0FFF')"
WINDOW = {"startDateTime": "2031-01-06T00:00:00Z", "endDateTime": "2031-01-07T00:00:00Z"}
TENANT = os.environ.get("GRAPH_CONTRACT") == "1"


@dataclass
class Target:
    """Where the contract is checked, and what the fake says about the open points."""

    name: str
    graph_url: str
    mailbox: str
    tokens: TokenProvider
    behaviour: Behaviour
    other_mailbox: str | None = None
    made: list[tuple[str, str]] = field(default_factory=list)  # (mailbox, event id)

    def client(self, mailbox: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.graph_url}/users/{mailbox or self.mailbox}",
            headers={"Authorization": f"Bearer {self.tokens.token()}"},
            timeout=30.0,
        )

    def create(
        self, http: httpx.Client, body: dict[str, Any], mailbox: str | None = None
    ) -> httpx.Response:
        answer = http.post("/events", json=body)
        if answer.status_code == 201:
            self.made.append((mailbox or self.mailbox, answer.json()["id"]))
        return answer

    def clean(self) -> None:
        for mailbox, event_id in self.made:
            with self.client(mailbox) as http:
                for _ in range(2):  # out of the calendar, then out of Deleted Items
                    http.delete(f"/events/{event_id}")


# The tenant is a target only when asked for: `make test` never lists it, not even as skipped.
@pytest.fixture(params=["fake", "tenant"] if TENANT else ["fake"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "fake":
        mailboxes = {"contract.test@mediegruppen.dk", "contract.other@mediegruppen.dk"}
        with GraphFake(seed=5, mailboxes=mailboxes) as fake:
            tokens = ClientCredentialsTokenProvider(
                fake.token_url, fake.client_id, fake.client_secret
            )
            found = Target(
                "fake",
                fake.graph_url,
                "contract.test@mediegruppen.dk",
                tokens,
                fake.behaviour,
                other_mailbox="contract.other@mediegruppen.dk",
            )
            yield found
        return
    missing = [
        name
        for name in (
            "GRAPH_TENANT_ID",
            "GRAPH_CLIENT_ID",
            "GRAPH_CLIENT_SECRET",
            "GRAPH_CONTRACT_MAILBOX",
        )
        if not os.environ.get(name)
    ]
    if missing:
        pytest.fail(f"make graph-contract needs {', '.join(missing)} (see the module doc)")
    tokens = MsalTokenProvider(
        os.environ["GRAPH_TENANT_ID"],
        os.environ["GRAPH_CLIENT_ID"],
        os.environ["GRAPH_CLIENT_SECRET"],
    )
    found = Target(
        "tenant",
        os.environ.get("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0"),
        os.environ["GRAPH_CONTRACT_MAILBOX"],
        tokens,
        Behaviour(),  # the fake's defaults: what docs/graph.md says the fake assumes
        other_mailbox=os.environ.get("GRAPH_CONTRACT_OTHER_MAILBOX"),
    )
    try:
        yield found
    finally:
        found.clean()


def body(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "subject": "CRM contract test (delete me)",
        "body": {"contentType": "text", "content": "Dagsorden:\nMål & planer"},
        "start": {"dateTime": "2031-01-06T10:00:00", "timeZone": "Romance Standard Time"},
        "end": {"dateTime": "2031-01-06T11:00:00", "timeZone": "Romance Standard Time"},
        "categories": ["CRM"],
        "showAs": "busy",
    }
    value.update(overrides)
    return value


def tagged(value: str, **overrides: Any) -> dict[str, Any]:
    return body(singleValueExtendedProperties=[{"id": PROP, "value": value}], **overrides)


def by_tag(prop_id: str, value: str) -> str:
    return f"singleValueExtendedProperties/Any(ep: ep/id eq '{prop_id}' and ep/value eq '{value}')"


def switch(target: Target, name: str, seen: object) -> str:
    return (
        f"{target.name} answers {seen!r}: set Behaviour.{name} accordingly in "
        "tests/fakes/graph_store.py and record it in docs/graph.md"
    )


def code(answer: httpx.Response) -> str:
    return str(answer.json()["error"]["code"])


# --- documented behaviours ---------------------------------------------------------------------
def test_create_answers_201_with_utc_times_and_the_transaction_id(target: Target) -> None:
    # api/user-post-events; api/resources/event (start/end in UTC by default, transactionId).
    tx = str(uuid.uuid4())
    with target.client() as http:
        answer = target.create(http, body(transactionId=tx))
        assert answer.status_code == 201, answer.text
        event = answer.json()
        assert event["start"] == {"dateTime": "2031-01-06T09:00:00.0000000", "timeZone": "UTC"}
        assert event["transactionId"] == tx
        assert event["originalStartTimeZone"] == "Romance Standard Time"


def test_an_identical_repeat_of_a_transaction_id_makes_no_second_event(target: Target) -> None:
    # api/resources/event, transactionId: avoids redundant POSTs of the same event.
    tx = str(uuid.uuid4())
    with target.client() as http:
        first = target.create(http, body(transactionId=tx))
        again = target.create(http, body(transactionId=tx))
        assert again.status_code == 201
        assert again.json()["id"] == first.json()["id"]


def test_the_extended_property_filter_case_rules(target: Target) -> None:
    # api/singlevaluelegacyextendedproperty-get: the Name is matched case-sensitively, the
    # value case-insensitively.
    value = f"act-{uuid.uuid4()}"
    with target.client() as http:
        target.create(http, tagged(value))

        def found(prop_id: str, wanted: str) -> int:
            answer = http.get("/events", params={"$filter": by_tag(prop_id, wanted)})
            assert answer.status_code == 200, answer.text
            return len(answer.json()["value"])

        assert found(PROP, value) == 1
        assert found(PROP, value.upper()) == 1
        assert found(PROP.replace("CrmActivityId", "crmactivityid"), value) == 0


def test_bodies_are_html_unless_text_is_preferred(target: Target) -> None:
    # api/resources/itembody, Prefer: outlook.body-content-type.
    with target.client() as http:
        event_id = target.create(http, body()).json()["id"]
        assert http.get(f"/events/{event_id}").json()["body"]["contentType"].lower() == "html"
        text = http.get(
            f"/events/{event_id}", headers={"Prefer": 'outlook.body-content-type="text"'}
        ).json()["body"]
        assert text["contentType"].lower() == "text"
        assert "Mål & planer" in text["content"]


def test_events_and_calendar_view_are_the_default_calendar(target: Target) -> None:
    # api/user-list-events, api/user-list-calendarview: the default calendar.
    value = f"act-{uuid.uuid4()}"
    with target.client() as http:
        mine = target.create(http, tagged(value)).json()["id"]
        calendar = http.post("/calendars", json={"name": f"CRM contract {uuid.uuid4().hex[:6]}"})
        assert calendar.status_code == 201, calendar.text
        try:
            other = http.post(f"/calendars/{calendar.json()['id']}/events", json=tagged(value))
            assert other.status_code == 201
            listed = http.get("/events", params={"$filter": by_tag(PROP, value)}).json()["value"]
            assert [e["id"] for e in listed] == [mine]
            view = http.get("/calendarView", params=WINDOW | {"$top": "100"}).json()["value"]
            assert other.json()["id"] not in {e["id"] for e in view}
            assert mine in {e["id"] for e in view}
        finally:
            http.delete(f"/calendars/{calendar.json()['id']}")


def test_a_stale_change_key_is_412(target: Target) -> None:
    # api/event-update with If-Match; errors: 412 Precondition Failed.
    with target.client() as http:
        created = target.create(http, body()).json()
        assert http.patch(f"/events/{created['id']}", json={"subject": "v2"}).status_code == 200
        stale = http.patch(
            f"/events/{created['id']}",
            json={"subject": "v3"},
            headers={"If-Match": created["@odata.etag"]},
        )
        assert stale.status_code == 412
        assert code(stale) == "ErrorIrresolvableConflict"


def test_a_mailbox_that_does_not_exist_is_a_mailbox_error_not_an_item_one(
    target: Target,
) -> None:
    # errors: 404, with a code naming the user (never ErrorItemNotFound for a mailbox).
    domain = target.mailbox.rsplit("@", 1)[1]
    with target.client(f"crm-contract-missing-{uuid.uuid4().hex[:8]}@{domain}") as http:
        answer = http.get("/events")
        assert answer.status_code == 404
        assert code(answer) in ("ErrorInvalidUser", "MailboxNotEnabledForRESTAPI")


def test_a_deleted_event_leaves_the_calendar_view(target: Target) -> None:
    # api/event-delete: the event leaves its calendar (into Deleted Items).
    with target.client() as http:
        event_id = target.create(http, body()).json()["id"]
        assert http.delete(f"/events/{event_id}").status_code == 204
        view = http.get("/calendarView", params=WINDOW | {"$top": "100"}).json()["value"]
        assert event_id not in {e["id"] for e in view}


# --- open points: the switches ----------------------------------------------------------------
def test_what_a_repeat_with_another_body_answers(target: Target) -> None:
    tx = str(uuid.uuid4())
    with target.client() as http:
        target.create(http, body(transactionId=tx))
        other = http.post("/events", json=body(transactionId=tx, subject="Noget andet"))
        seen = (other.status_code, other.json().get("error", {}).get("code"))
        wanted = (target.behaviour.duplicate_transaction_status, "ErrorDuplicateTransactionId")
        assert seen == wanted, switch(target, "duplicate_transaction_status", seen)


def test_how_long_a_transaction_id_is_remembered(target: Target) -> None:
    tx = str(uuid.uuid4())
    with target.client() as http:
        first = target.create(http, body(transactionId=tx)).json()["id"]
        for _ in range(2):  # gone for good: out of Deleted Items too
            http.delete(f"/events/{first}")
        again = target.create(http, body(transactionId=tx))
        seen = "event" if again.status_code == 201 else "forever"
        if target.behaviour.transaction_memory in ("event", "forever"):
            assert seen == target.behaviour.transaction_memory, switch(
                target, "transaction_memory", (again.status_code, again.text[:200])
            )


def test_where_a_transaction_id_must_be_unique(target: Target) -> None:
    if target.other_mailbox is None:
        pytest.skip("GRAPH_CONTRACT_OTHER_MAILBOX is not set")
    tx = str(uuid.uuid4())
    with target.client() as http, target.client(target.other_mailbox) as other:
        target.create(http, body(transactionId=tx))
        answer = target.create(other, body(transactionId=tx), target.other_mailbox)
        seen = "mailbox" if answer.status_code == 201 else "application"
        assert seen == target.behaviour.transaction_scope, switch(
            target, "transaction_scope", (answer.status_code, answer.text[:200])
        )


def test_what_get_answers_for_an_event_in_deleted_items(target: Target) -> None:
    with target.client() as http:
        event_id = target.create(http, body()).json()["id"]
        http.delete(f"/events/{event_id}")
        answer = http.get(f"/events/{event_id}", headers={"Prefer": 'IdType="ImmutableId"'})
        seen = "ok" if answer.status_code == 200 else "not_found"
        assert seen == target.behaviour.deleted_item_get, switch(
            target, "deleted_item_get", answer.status_code
        )


def test_the_parent_folder_of_a_deleted_event_is_deleted_items(target: Target) -> None:
    # How calendar-sync tells a user's delete when GET still answers: PidTagParentEntryId of
    # the event equals PidTagEntryId of Deleted Items (byte for byte: an open point).
    headers = {"Prefer": 'IdType="ImmutableId"'}
    with target.client() as http:
        event_id = target.create(http, body()).json()["id"]
        folder = http.get("/mailFolders/deleteditems", params={"$expand": ENTRY}).json()
        deleted_items = folder["singleValueExtendedProperties"][0]["value"]

        def parent() -> str | None:
            read = http.get(f"/events/{event_id}", params={"$expand": PARENT}, headers=headers)
            if read.status_code != 200:
                return None
            props = read.json().get("singleValueExtendedProperties") or []
            return str(props[0]["value"]) if props else None

        assert parent() not in (None, deleted_items)
        http.delete(f"/events/{event_id}")
        if target.behaviour.deleted_item_get == "ok":
            assert parent() == deleted_items, switch(target, "deleted_item_get", parent())


def test_whether_a_comma_joined_prefer_header_counts_in_full(target: Target) -> None:
    with target.client() as http:
        event_id = target.create(http, body()).json()["id"]
        both = {"Prefer": 'IdType="ImmutableId", outlook.body-content-type="text"'}
        seen = http.get(f"/events/{event_id}", headers=both).json()["body"]["contentType"]
        assert (seen.lower() == "text") is target.behaviour.combined_prefer, switch(
            target, "combined_prefer", seen
        )


def test_one_expand_can_ask_for_two_extended_properties(target: Target) -> None:
    # calendar-sync reads its tag and the parent folder in one GET ("id eq A or id eq B").
    value = f"act-{uuid.uuid4()}"
    with target.client() as http:
        event_id = target.create(http, tagged(value)).json()["id"]
        both = f"singleValueExtendedProperties($filter=id eq '{PROP}' or id eq 'Binary 0x0E09')"
        answer = http.get(f"/events/{event_id}", params={"$expand": both})
        assert answer.status_code == 200, answer.text
        ids = {p["id"].lower() for p in answer.json()["singleValueExtendedProperties"]}
        assert ids == {PROP.lower(), "binary 0x0e09"}
