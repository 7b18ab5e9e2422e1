"""The Graph fake itself, over plain httpx, against the facts in docs/graph.md.

Each behaviour has its own test, and each test of a behaviour Graph documents names the page
it follows (learn.microsoft.com/graph/…). Where the documentation is silent the fake follows a
switch (`Behaviour`); those tests say so, and `make graph-contract` checks the same answers
against a tenant (test_graph_contract.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest

from tests.fakes import Behaviour, FakeClock, GraphFake
from tests.support.polling import wait_until

UPN = "anna.jensen@mediegruppen.dk"
PROP = "String {6d0c7d7e-3f8a-4e0b-9a51-2b6c4f1e8a37} Name CrmActivityId"
SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    with GraphFake(seed=7) as running:
        yield running


def get_token(fake: GraphFake, client_id: str | None = None, secret: str | None = None) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id or fake.client_id,
        "client_secret": secret or fake.client_secret,
        "scope": SCOPE,
    }
    return str(httpx.post(fake.token_url, data=form).json()["access_token"])


def authorized(
    fake: GraphFake,
    upn: str = UPN,
    *,
    client_id: str | None = None,
    secret: str | None = None,
    timeout: float = 5.0,
) -> httpx.Client:
    headers = {"Authorization": f"Bearer {get_token(fake, client_id, secret)}"}
    return httpx.Client(base_url=f"{fake.graph_url}/users/{upn}", headers=headers, timeout=timeout)


@pytest.fixture
def http(fake: GraphFake) -> Iterator[httpx.Client]:
    with authorized(fake) as client:
        yield client


def event_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": "Afdækningsmøde: Årsplan – Bageriet Ørsted",
        "body": {"contentType": "text", "content": "Dagsorden:\nMål & planer"},
        "start": {"dateTime": "2026-03-02T10:00:00", "timeZone": "Romance Standard Time"},
        "end": {"dateTime": "2026-03-02T11:00:00", "timeZone": "Romance Standard Time"},
        "location": {"displayName": "Kundens kontor"},
        "categories": ["CRM", "Afdækningsmøde"],
        "isReminderOn": True,
        "reminderMinutesBeforeStart": 30,
        "showAs": "busy",
    }
    body.update(overrides)
    return body


def assert_graph_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "innerError"}
    assert error["code"] == code
    assert error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    return dict(error)


# --- token endpoint and authentication ---------------------------------------------------------
def test_token_endpoint_issues_bearer_tokens_for_client_credentials(fake: GraphFake) -> None:
    form = {"grant_type": "client_credentials", "client_id": fake.client_id, "scope": SCOPE}
    answer = httpx.post(fake.token_url, data=form | {"client_secret": fake.client_secret})
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["access_token"]

    wrong_secret = httpx.post(fake.token_url, data=form | {"client_secret": "nope"})
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    wrong_grant = httpx.post(fake.token_url, data=form | {"grant_type": "password"})
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    assert fake.token_requests == 3


def test_graph_calls_need_a_valid_bearer_token(fake: GraphFake) -> None:
    url = f"{fake.graph_url}/users/{UPN}/events"
    missing = httpx.get(url, headers={"client-request-id": "mine-123"})
    error = assert_graph_error(missing, 401, "InvalidAuthenticationToken")
    assert error["innerError"]["client-request-id"] == "mine-123"
    assert_graph_error(
        httpx.get(url, headers={"Authorization": "Bearer forged"}),
        401,
        "InvalidAuthenticationToken",
    )
    token = get_token(fake)
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    fake.expire_tokens()
    expired = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert "expired" in assert_graph_error(expired, 401, "InvalidAuthenticationToken")["message"]


# --- events -------------------------------------------------------------------------------------
def test_create_answers_201_with_the_event_in_utc(fake: GraphFake, http: httpx.Client) -> None:
    answer = http.post("/events", json=event_body())
    assert answer.status_code == 201
    event = answer.json()
    assert event["id"]
    assert event["changeKey"]
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["createdDateTime"].endswith("Z")
    assert event["lastModifiedDateTime"]
    assert event["subject"] == "Afdækningsmøde: Årsplan – Bageriet Ørsted"
    assert event["start"] == {"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "UTC"}
    assert event["end"] == {"dateTime": "2026-03-02T10:00:00.0000000", "timeZone": "UTC"}
    assert event["originalStartTimeZone"] == "Romance Standard Time"
    assert event["location"] == {"displayName": "Kundens kontor"}
    assert event["categories"] == ["CRM", "Afdækningsmøde"]
    assert (event["isReminderOn"], event["reminderMinutesBeforeStart"]) == (True, 30)
    assert event["showAs"] == "busy"
    assert "singleValueExtendedProperties" not in event
    assert [e["id"] for e in fake.events(UPN)] == [event["id"]]


def test_defaults_for_properties_the_client_does_not_send(http: httpx.Client) -> None:
    event = http.post(
        "/events", json={k: v for k, v in event_body().items() if k in ("start", "end")}
    ).json()
    assert (event["isReminderOn"], event["reminderMinutesBeforeStart"]) == (True, 15)
    assert (event["showAs"], event["sensitivity"]) == ("busy", "normal")
    # api/resources/event: transactionId "is only returned in a response payload if an app
    # has set it".
    assert "transactionId" not in event


@pytest.mark.parametrize(
    ("day", "utc"),
    [("2026-03-29", "2026-03-29T08:00:00.0000000"), ("2026-10-25", "2026-10-25T09:00:00.0000000")],
)
def test_romance_standard_time_is_converted_across_dst(
    fake: GraphFake, http: httpx.Client, day: str, utc: str
) -> None:
    start = {"dateTime": f"{day}T10:00:00", "timeZone": "Romance Standard Time"}
    end = {"dateTime": f"{day}T11:00:00", "timeZone": "Romance Standard Time"}
    http.post("/events", json=event_body(start=start, end=end))
    assert fake.events(UPN)[0]["start"] == {"dateTime": utc, "timeZone": "UTC"}


def test_prefer_outlook_timezone_answers_in_that_zone(http: httpx.Client) -> None:
    event_id = http.post("/events", json=event_body()).json()["id"]
    answer = http.get(
        f"/events/{event_id}", headers={"Prefer": 'outlook.timezone="Romance Standard Time"'}
    )
    assert answer.json()["start"] == {
        "dateTime": "2026-03-02T10:00:00.0000000",
        "timeZone": "Romance Standard Time",
    }
    assert 'outlook.timezone="Romance Standard Time"' in answer.headers["Preference-Applied"]
    immutable = http.get(f"/events/{event_id}", headers={"Prefer": 'IdType="ImmutableId"'})
    assert immutable.headers["Preference-Applied"] == 'idtype="ImmutableId"'


def test_time_zones_graph_does_not_know_are_refused(http: httpx.Client) -> None:
    iana = {"dateTime": "2026-03-02T10:00:00", "timeZone": "Europe/Copenhagen"}
    refused = http.post("/events", json=event_body(start=iana, end=iana))
    error = assert_graph_error(refused, 400, "TimeZoneNotSupportedException")
    assert "Europe/Copenhagen" in error["message"]
    paris = {"dateTime": "2026-03-02T10:00:00", "timeZone": "Europe/Paris"}
    assert http.post("/events", json=event_body(start=paris, end=paris)).status_code == 201
    prefer = http.get("/events", headers={"Prefer": 'outlook.timezone="Mars/Olympus"'})
    assert_graph_error(prefer, 400, "TimeZoneNotSupportedException")


def test_body_comes_back_as_html_unless_text_is_preferred(http: httpx.Client) -> None:
    event_id = http.post("/events", json=event_body()).json()["id"]
    as_html = http.get(f"/events/{event_id}").json()["body"]
    assert as_html["contentType"] == "html"
    assert "Mål &amp; planer" in as_html["content"]
    prefer_text = {"Prefer": 'outlook.body-content-type="text"'}
    as_text = http.get(f"/events/{event_id}", headers=prefer_text).json()["body"]
    assert as_text == {"contentType": "text", "content": "Dagsorden:\nMål & planer"}


def test_repeated_transaction_id_returns_the_same_event(
    fake: GraphFake, http: httpx.Client
) -> None:
    # api/resources/event, transactionId: the server avoids redundant POSTs of the same event.
    body = event_body(transactionId="crm-activity-42-v1")
    first = http.post("/events", json=body)
    again = http.post("/events", json=body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["transactionId"] == "crm-activity-42-v1"
    assert len(fake.events(UPN)) == 1

    other = http.post("/events", json=body | {"subject": "Noget andet"})
    assert_graph_error(other, 400, "ErrorDuplicateTransactionId")
    assert len(fake.events(UPN)) == 1


def test_get_expands_extended_properties_only_when_asked(http: httpx.Client) -> None:
    tagged = event_body(singleValueExtendedProperties=[{"id": PROP, "value": "act-1"}])
    event_id = http.post("/events", json=tagged).json()["id"]
    plain = http.get(f"/events/{event_id}").json()
    assert "singleValueExtendedProperties" not in plain
    expand = f"singleValueExtendedProperties($filter=id eq '{PROP}')"
    expanded = http.get(f"/events/{event_id}", params={"$expand": expand}).json()
    assert expanded["singleValueExtendedProperties"] == [{"id": PROP, "value": "act-1"}]


def test_filter_by_extended_property_finds_only_tagged_events(
    fake: GraphFake, http: httpx.Client
) -> None:
    for activity in ("act-1", "act-2", "o'brien"):
        tagged = event_body(singleValueExtendedProperties=[{"id": PROP, "value": activity}])
        http.post("/events", json=tagged)
    fake.create_as_user(UPN, event_body(subject="Tandlæge"))

    def find(value: str) -> list[dict[str, Any]]:
        literal = value.replace("'", "''")
        flt = (
            f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' and ep/value eq '{literal}')"
        )
        answer = http.get("/events", params={"$filter": flt})
        assert answer.status_code == 200
        return list(answer.json()["value"])

    assert [e["subject"] for e in find("act-2")] == [event_body()["subject"]]
    assert len(find("o'brien")) == 1
    assert find("act-9") == []
    assert_graph_error(
        http.get("/events", params={"$filter": "subject eq 'x'"}), 400, "ErrorInvalidUrlQueryFilter"
    )


def test_list_pages_by_ten_with_a_next_link(http: httpx.Client) -> None:
    for n in range(12):
        http.post("/events", json=event_body(subject=f"Kontakt {n}"))
    first = http.get("/events").json()
    assert len(first["value"]) == 10
    second = http.get(first["@odata.nextLink"]).json()
    assert [e["subject"] for e in second["value"]] == ["Kontakt 10", "Kontakt 11"]
    assert "@odata.nextLink" not in second


def test_patch_is_partial_and_changes_the_change_key(http: httpx.Client) -> None:
    created = http.post("/events", json=event_body()).json()
    answer = http.patch(f"/events/{created['id']}", json={"subject": "Statusmøde: Q2"})
    assert answer.status_code == 200
    patched = answer.json()
    assert patched["subject"] == "Statusmøde: Q2"
    assert patched["location"] == created["location"]
    assert patched["start"] == created["start"]
    assert patched["changeKey"] != created["changeKey"]
    assert patched["id"] == created["id"]


def test_patch_with_a_stale_etag_is_412(http: httpx.Client) -> None:
    created = http.post("/events", json=event_body()).json()
    fresh = http.patch(
        f"/events/{created['id']}",
        json={"subject": "v2"},
        headers={"If-Match": created["@odata.etag"]},
    )
    assert fresh.status_code == 200
    stale = http.patch(
        f"/events/{created['id']}",
        json={"subject": "v3"},
        headers={"If-Match": created["@odata.etag"]},
    )
    assert_graph_error(stale, 412, "ErrorIrresolvableConflict")
    assert http.get(f"/events/{created['id']}").json()["subject"] == "v2"


def test_delete_moves_to_deleted_items_and_a_second_delete_purges(
    fake: GraphFake, http: httpx.Client
) -> None:
    # api/event-delete removes the event from its calendar; api/event-permanentdelete is the
    # hard delete: a plain delete lands in Deleted Items, where a delete purges it.
    event_id = http.post("/events", json=event_body()).json()["id"]
    assert http.delete(f"/events/{event_id}").status_code == 204
    assert fake.events(UPN) == []
    assert fake.folder_of(UPN, event_id) == "deleteditems"
    assert http.delete(f"/events/{event_id}").status_code == 204
    assert fake.all_events(UPN) == []
    assert_graph_error(http.get(f"/events/{event_id}"), 404, "ErrorItemNotFound")
    assert_graph_error(http.delete(f"/events/{event_id}"), 404, "ErrorItemNotFound")
    assert_graph_error(
        http.patch(f"/events/{event_id}", json={"subject": "x"}), 404, "ErrorItemNotFound"
    )


def test_a_user_deleting_in_outlook_moves_the_event_to_deleted_items(
    fake: GraphFake, http: httpx.Client
) -> None:
    # outlook-immutable-id: an immutable id does not change when the item moves to another
    # folder of the mailbox, so the deleted event still answers by its id (switch
    # deleted_item_get="ok"; "not_found" is the other reading, tested below).
    event_id = http.post("/events", json=event_body()).json()["id"]
    fake.delete_as_user(UPN, event_id)
    assert fake.events(UPN) == []
    assert [e["id"] for e in fake.deleted_items(UPN)] == [event_id]
    assert http.get(f"/events/{event_id}").status_code == 200
    assert http.get("/events").json()["value"] == []
    window = {"startDateTime": "2026-03-01T00:00:00Z", "endDateTime": "2026-04-01T00:00:00Z"}
    assert http.get("/calendarView", params=window).json()["value"] == []
    fake.restore_as_user(UPN, event_id)
    assert [e["id"] for e in fake.events(UPN)] == [event_id]


def test_the_parent_folder_of_a_deleted_event_is_deleted_items(
    fake: GraphFake, http: httpx.Client
) -> None:
    # api/singlevaluelegacyextendedproperty-get: a MAPI property by tag can be expanded;
    # PidTagParentEntryId (0x0E09) of the item equals PidTagEntryId (0x0FFF) of its folder.
    event_id = http.post("/events", json=event_body()).json()["id"]
    parent = "singleValueExtendedProperties($filter=id eq 'Binary 0x0E09')"
    folder = http.get(
        "/mailFolders/deleteditems",
        params={"$expand": "singleValueExtendedProperties($filter=id eq 'Binary 0x0FFF')"},
    ).json()
    deleted_items = folder["singleValueExtendedProperties"][0]["value"]

    def parent_of() -> str:
        read = http.get(f"/events/{event_id}", params={"$expand": parent}).json()
        return str(read["singleValueExtendedProperties"][0]["value"])

    assert parent_of() != deleted_items
    fake.delete_as_user(UPN, event_id)
    assert parent_of() == deleted_items


def test_deleted_items_can_answer_404_with_the_switch(fake: GraphFake, http: httpx.Client) -> None:
    # Open point (docs/graph.md): what GET answers for an event in Deleted Items.
    fake.behaviour.deleted_item_get = "not_found"
    event_id = http.post("/events", json=event_body()).json()["id"]
    fake.delete_as_user(UPN, event_id)
    assert_graph_error(http.get(f"/events/{event_id}"), 404, "ErrorItemNotFound")


def test_unknown_mailbox_is_refused_when_mailboxes_are_configured() -> None:
    with GraphFake(mailboxes={UPN}) as fake:
        headers = {"Authorization": f"Bearer {get_token(fake)}"}
        other = httpx.get(f"{fake.graph_url}/users/nobody@x.dk/events", headers=headers)
        assert_graph_error(other, 404, "ErrorInvalidUser")
        mine = httpx.get(f"{fake.graph_url}/users/{UPN.upper()}/events", headers=headers)
        assert mine.status_code == 200  # mailbox names ignore case


def test_calendar_view_delta_reports_changes_and_removals(
    fake: GraphFake, http: httpx.Client
) -> None:
    keep = http.post("/events", json=event_body(subject="Beholdes")).json()["id"]
    gone = http.post("/events", json=event_body(subject="Slettes")).json()["id"]
    window = {"startDateTime": "2026-03-01T00:00:00Z", "endDateTime": "2026-04-01T00:00:00Z"}
    first = http.get("/calendarView/delta", params=window).json()
    assert {e["id"] for e in first["value"]} == {keep, gone}

    fake.delete_as_user(UPN, gone)
    fake.update_as_user(UPN, keep, {"subject": "Flyttet af brugeren"})
    second = http.get(first["@odata.deltaLink"]).json()
    removed = [e for e in second["value"] if "@removed" in e]
    changed = [e for e in second["value"] if "@removed" not in e]
    assert [(e["id"], e["@removed"]) for e in removed] == [(gone, {"reason": "deleted"})]
    assert [(e["id"], e["subject"]) for e in changed] == [(keep, "Flyttet af brugeren")]
    assert http.get(second["@odata.deltaLink"]).json()["value"] == []

    fake.expire_delta_tokens()
    assert http.get(second["@odata.deltaLink"]).status_code == 410


# --- fault injection ----------------------------------------------------------------------------
def test_throttling_answers_429_with_whole_seconds_of_retry_after(
    fake: GraphFake, http: httpx.Client
) -> None:
    # throttling-limits (Outlook service limits) and throttling: 429 with a Retry-After in
    # seconds; Outlook's are whole and long (30 to 300 here).
    fake.faults.throttle_ratio = 1.0
    answer = http.get("/events")
    assert_graph_error(answer, 429, "TooManyRequests")
    assert 30 <= int(answer.headers["Retry-After"]) <= 300
    assert fake.requests(UPN)[-1].outcome == "throttle"


def test_asking_before_retry_after_passed_is_throttled_again() -> None:
    # throttling: "wait the number of seconds specified in the Retry-After header"; a request
    # before then meets the same throttle, with the seconds still to wait.
    with GraphFake(clock=FakeClock(scale=1000)) as fake:
        fake.faults.fail_next("throttle")
        with authorized(fake) as http:
            first = http.get("/events")
            wait = int(first.headers["Retry-After"])
            again = http.get("/events")
            assert_graph_error(again, 429, "TooManyRequests")
            assert 1 <= int(again.headers["Retry-After"]) <= wait
            assert fake.requests(UPN)[-1].outcome == "blocked"
            fake.clock.sleep(wait)  # in the fake's seconds: wait / 1000 of ours
            assert http.get("/events").status_code == 200


def test_a_fixed_fractional_retry_after_stays_for_fast_tests(
    fake: GraphFake, http: httpx.Client
) -> None:
    fake.faults.retry_after = "0.05"  # not Graph's: a test that wants fast in-place retries
    fake.faults.fail_next("throttle")
    assert http.get("/events").headers["Retry-After"] == "0.05"


def test_unavailable_answers_503_with_retry_after(fake: GraphFake, http: httpx.Client) -> None:
    fake.faults.unavailable_ratio = 1.0
    fake.faults.retry_after = "0.2"
    answer = http.post("/events", json=event_body())
    assert_graph_error(answer, 503, "serviceNotAvailable")
    assert answer.headers["Retry-After"] == "0.2"
    assert fake.events(UPN) == []  # a refused request changed nothing


def test_ratios_are_reproducible_with_a_seed() -> None:
    def statuses(seed: int) -> list[int]:
        with GraphFake(seed=seed) as fake:
            fake.faults.throttle_ratio = 0.5
            fake.faults.enforce_retry_after = False
            headers = {"Authorization": f"Bearer {get_token(fake)}"}
            with httpx.Client(headers=headers) as client:
                url = f"{fake.graph_url}/users/{UPN}/events"
                return [client.get(url).status_code for _ in range(20)]

    assert statuses(3) == statuses(3)
    assert set(statuses(3)) == {200, 429}


def test_a_lost_create_response_drops_the_connection_after_creating(
    fake: GraphFake, http: httpx.Client
) -> None:
    fake.faults.lose_create_response_ratio = 1.0
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/events", json=event_body())
    assert len(fake.events(UPN)) == 1
    record = fake.requests(UPN, "POST")[-1]
    assert (record.status, record.outcome) == (None, "lost_response")
    assert http.get("/events").status_code == 200  # only creates are affected by the ratio


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("504", 504, "GatewayTimeout"),
        ("503", 503, "serviceNotAvailable"),
        ("500", 500, "InternalServerError"),
    ],
)
def test_a_lost_create_response_can_be_a_5xx_after_the_create(
    fake: GraphFake,
    http: httpx.Client,
    mode: Literal["504", "503", "500"],
    status: int,
    code: str,
) -> None:
    # errors: 5xx say the service failed, not that nothing happened.
    fake.faults.lost_response_mode = mode
    fake.faults.fail_next("lose_response", method="POST")
    assert_graph_error(http.post("/events", json=event_body()), status, code)
    assert len(fake.events(UPN)) == 1


def test_a_create_can_be_stored_late_after_its_answer_was_lost(
    fake: GraphFake, http: httpx.Client
) -> None:
    fake.faults.late_store_delay = 0.3
    fake.faults.lost_response_mode = "504"
    fake.faults.fail_next("late_store", method="POST")
    assert http.post("/events", json=event_body()).status_code == 504
    assert fake.events(UPN) == []  # not yet
    assert fake.pending_stores() == 1
    wait_until(lambda: len(fake.events(UPN)) == 1, message="the late store")
    assert fake.pending_stores() == 0


def test_a_client_that_times_out_does_not_stop_the_server_creating(fake: GraphFake) -> None:
    # best-practices ("Handle expected errors"): a request that timed out on the client may
    # still complete on the service, so its outcome is unknown, not a failure.
    fake.faults.slow_create_seconds = 0.5
    fake.faults.fail_next("slow_create", method="POST")
    with authorized(fake, timeout=0.2) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/events", json=event_body())
    wait_until(lambda: len(fake.events(UPN)) == 1, message="the slow create")
    assert fake.requests(UPN, "POST")[0].outcome == "slow_create"


def test_scripted_faults_hit_the_next_matching_requests(
    fake: GraphFake, http: httpx.Client
) -> None:
    fake.faults.enforce_retry_after = False  # here only the order of scripted faults counts
    fake.faults.fail_next("gateway_timeout", method="POST", mailbox=UPN)
    fake.faults.fail_next("unavailable", times=2, method="GET")
    assert http.get("/events").status_code == 503
    assert http.post("/events", json=event_body()).status_code == 504
    assert fake.events(UPN) == []  # a plain 504 did not create anything
    assert http.get("/events").status_code == 503
    assert http.get("/events").status_code == 200


def test_latency_delays_every_graph_request(fake: GraphFake, http: httpx.Client) -> None:
    fake.faults.latency = 0.2
    began = time.monotonic()
    http.get("/events")
    assert time.monotonic() - began >= 0.2
    record = fake.requests(UPN)[-1]
    assert record.finished is not None
    assert record.finished - record.started >= 0.2


def _concurrent_gets(fake: GraphFake, http: httpx.Client, count: int) -> list[httpx.Response]:
    fake.faults.latency = 0.5  # long enough that every request is in flight at once
    barrier = threading.Barrier(count)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        answer = http.get("/events")
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_four_concurrent_requests_per_mailbox_are_served(
    fake: GraphFake, http: httpx.Client
) -> None:
    # throttling-limits, Outlook service limits: "4 concurrent requests" per app and mailbox.
    answers = _concurrent_gets(fake, http, 4)
    assert [a.status_code for a in answers] == [200] * 4
    assert fake.max_concurrency_seen(UPN) == 4
    assert fake.concurrency_rejections(UPN) == 0


def test_a_fifth_concurrent_request_is_throttled(fake: GraphFake, http: httpx.Client) -> None:
    # throttling: a request beyond a limit is answered 429 with Retry-After; it is not queued.
    answers = _concurrent_gets(fake, http, 5)
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 429]
    refused = next(a for a in answers if a.status_code == 429)
    error = assert_graph_error(refused, 429, "ApplicationThrottled")
    assert "MailboxConcurrency" in error["message"]
    assert refused.headers["Retry-After"]
    assert fake.max_concurrency_seen(UPN) == 5
    assert fake.concurrency_rejections(UPN) == 1
    assert fake.max_concurrency_seen("someone.else@mediegruppen.dk") == 0


def test_the_request_log_records_each_request_with_timestamps(
    fake: GraphFake, http: httpx.Client
) -> None:
    http.post("/events", json=event_body(), headers={"client-request-id": "abc"})
    http.get("/events")
    records = fake.requests(UPN)
    assert [(r.method, r.status, r.outcome) for r in records] == [
        ("POST", 201, "ok"),
        ("GET", 200, "ok"),
    ]
    assert records[0].client_request_id == "abc"
    assert records[0].started <= records[0].finished <= records[1].started  # type: ignore[operator]
    assert records[0].at.tzinfo is not None


# --- strict where Graph is strict -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("invalid_user", 404, "ErrorInvalidUser"),
        ("not_enabled", 404, "MailboxNotEnabledForRESTAPI"),
        ("access_denied", 403, "ErrorAccessDenied"),
    ],
)
def test_a_mailbox_that_refuses_the_app_answers_every_request_so(
    fake: GraphFake,
    http: httpx.Client,
    kind: Literal["invalid_user", "not_enabled", "access_denied"],
    status: int,
    code: str,
) -> None:
    # errors (403: no permission or licence; 404: the resource does not exist) and "Limiting
    # application permissions to specific Exchange Online mailboxes" (access policies): the
    # mailbox, not one event, refuses, whatever the request asks for.
    event_id = http.post("/events", json=event_body()).json()["id"]
    fake.mailbox_unavailable(UPN, kind)
    window = {"startDateTime": "2026-03-01T00:00:00Z", "endDateTime": "2026-04-01T00:00:00Z"}
    for answer in (
        http.get(f"/events/{event_id}"),
        http.patch(f"/events/{event_id}", json={"subject": "x"}),
        http.delete(f"/events/{event_id}"),
        http.get("/events"),
        http.post("/events", json=event_body()),
        http.get("/calendarView", params=window),
    ):
        assert_graph_error(answer, status, code)
    fake.mailbox_available(UPN)
    assert http.get(f"/events/{event_id}").status_code == 200


def test_tokens_must_carry_the_calendar_role(fake: GraphFake) -> None:
    # The event pages' permission tables: application permission Calendars.Read to read,
    # Calendars.ReadWrite to write; a token without it is refused with 403.
    fake.add_app("no-calendars", "secret-1", ("User.Read.All",))
    fake.add_app("read-only", "secret-2", ("Calendars.Read",))
    with authorized(fake, client_id="no-calendars", secret="secret-1") as none:
        assert_graph_error(none.get("/events"), 403, "ErrorAccessDenied")
    with authorized(fake, client_id="read-only", secret="secret-2") as reader:
        assert reader.get("/events").status_code == 200
        assert_graph_error(reader.post("/events", json=event_body()), 403, "ErrorAccessDenied")


def test_the_concurrency_limit_is_per_application_across_its_clients(fake: GraphFake) -> None:
    # throttling-limits, Outlook service limits: 4 concurrent requests per app and mailbox,
    # however many clients (processes, pods) the app runs; another app has its own 4.
    fake.add_app("other-app", "other-secret", ("Calendars.ReadWrite",))
    fake.faults.latency = 0.5
    clients = [authorized(fake) for _ in range(5)]
    clients.append(authorized(fake, client_id="other-app", secret="other-secret"))
    barrier = threading.Barrier(len(clients))
    answers: dict[int, int] = {}

    def one(n: int) -> None:
        barrier.wait()
        answers[n] = clients[n].get("/events").status_code

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert sorted(answers[n] for n in range(5)) == [200, 200, 200, 200, 429]
    assert answers[5] == 200  # the other application was not counted with ours
    assert fake.concurrency_rejections(UPN) == 1


def test_ten_thousand_requests_per_ten_minutes_then_429_until_the_window_moves() -> None:
    # throttling-limits, Outlook service limits: 10,000 API requests in a 10 minute period per
    # app and mailbox. Scaled down here: 5 per 600 fake seconds, on a fast clock.
    with GraphFake(clock=FakeClock(scale=600)) as fake:
        fake.faults.requests_per_window = 5
        with authorized(fake) as http:
            assert [http.get("/events").status_code for _ in range(5)] == [200] * 5
            refused = http.get("/events")
            error = assert_graph_error(refused, 429, "ApplicationThrottled")
            assert "MailboxRequests" in error["message"]
            wait = int(refused.headers["Retry-After"])
            assert 1 <= wait <= 600
            with authorized(fake, "someone.else@mediegruppen.dk") as other:
                assert other.get("/events").status_code == 200  # per mailbox
            fake.clock.sleep(wait)
            assert http.get("/events").status_code == 200


@pytest.mark.parametrize(
    ("prop_id", "value", "found"),
    [
        (PROP, "ACT-1", True),  # the value ignores case
        (
            PROP.replace("String", "string")
            .upper()
            .replace("NAME CRMACTIVITYID", "Name CrmActivityId"),
            "act-1",
            True,
        ),
        (PROP.replace("CrmActivityId", "crmactivityid"), "act-1", False),  # the name does not
    ],
)
def test_the_extended_property_filter_follows_the_documented_case_rules(
    http: httpx.Client, prop_id: str, value: str, found: bool
) -> None:
    # api/singlevaluelegacyextendedproperty-get: "Filtering the string name (Name) in the id
    # of an extended property is case-sensitive. Filtering the value property of an extended
    # property is case-insensitive."
    tagged = event_body(singleValueExtendedProperties=[{"id": PROP, "value": "act-1"}])
    http.post("/events", json=tagged)
    flt = f"singleValueExtendedProperties/Any(ep: ep/id eq '{prop_id}' and ep/value eq '{value}')"
    answer = http.get("/events", params={"$filter": flt})
    assert answer.status_code == 200
    assert len(answer.json()["value"]) == (1 if found else 0)


def test_lists_answer_html_bodies_unless_text_is_preferred(http: httpx.Client) -> None:
    # api/user-list-events and api/resources/itembody: bodies come as HTML by default;
    # Prefer: outlook.body-content-type="text" asks for text.
    http.post("/events", json=event_body())
    listed = http.get("/events").json()["value"][0]["body"]
    assert listed["contentType"] == "html"
    assert "<html>" in listed["content"]
    window = {"startDateTime": "2026-03-01T00:00:00Z", "endDateTime": "2026-04-01T00:00:00Z"}
    viewed = http.get("/calendarView", params=window).json()["value"][0]["body"]
    assert viewed["contentType"] == "html"
    text = {"Prefer": 'outlook.body-content-type="text"'}
    assert http.get("/events", headers=text).json()["value"][0]["body"]["contentType"] == "text"


def test_events_lists_the_default_calendar_only(fake: GraphFake, http: httpx.Client) -> None:
    # api/user-list-events: the events of the user's default calendar (other calendars by
    # their own path); calendarView likewise.
    mine = http.post("/events", json=event_body(subject="I standardkalenderen")).json()["id"]
    private = fake.create_as_user(UPN, event_body(subject="Privat"), calendar="Privat")
    listed = [e["id"] for e in http.get("/events").json()["value"]]
    assert listed == [mine]
    window = {"startDateTime": "2026-03-01T00:00:00Z", "endDateTime": "2026-04-01T00:00:00Z"}
    assert [e["id"] for e in http.get("/calendarView", params=window).json()["value"]] == [mine]
    calendars = http.get("/calendars").json()["value"]
    other = next(c for c in calendars if c["name"] == "Privat")
    assert not other["isDefaultCalendar"]
    in_other = http.get(f"/calendars/{other['id']}/events").json()["value"]
    assert [e["id"] for e in in_other] == [private]
    assert http.get(f"/events/{private}").status_code == 200  # by id, from anywhere


def test_calendar_view_is_the_window_of_the_default_calendar(http: httpx.Client) -> None:
    # api/user-list-calendarview: events overlapping [startDateTime, endDateTime).
    for day in ("2026-03-02", "2026-03-09", "2026-04-06"):
        when = {"dateTime": f"{day}T10:00:00", "timeZone": "Romance Standard Time"}
        http.post(
            "/events", json=event_body(start=when, end=when | {"dateTime": f"{day}T11:00:00"})
        )
    window = {"startDateTime": "2026-03-01T00:00:00Z", "endDateTime": "2026-03-31T00:00:00Z"}
    seen = http.get("/calendarView", params=window).json()["value"]
    assert [e["start"]["dateTime"][:10] for e in seen] == ["2026-03-02", "2026-03-09"]
    assert_graph_error(http.get("/calendarView"), 400, "ErrorInvalidParameter")


# --- transactionId: where the documentation is silent, switches ----------------------------------
def test_transaction_memory_event_forgets_it_with_the_event(
    fake: GraphFake, http: httpx.Client
) -> None:
    # api/resources/event documents transactionId only as avoiding redundant POSTs; for how
    # long is an open point (docs/graph.md): the default keeps it while its event exists.
    body = event_body(transactionId="tx-1")
    first = http.post("/events", json=body).json()["id"]
    fake.purge_as_user(UPN, first)
    again = http.post("/events", json=body)
    assert again.status_code == 201
    assert again.json()["id"] != first


def test_transaction_memory_forever_refuses_a_repeat_after_the_event_went(
    fake: GraphFake, http: httpx.Client
) -> None:
    # The other reading of the same silence: remembered for good (a switch until a tenant says).
    fake.behaviour.transaction_memory = "forever"
    body = event_body(transactionId="tx-1")
    fake.purge_as_user(UPN, http.post("/events", json=body).json()["id"])
    assert_graph_error(http.post("/events", json=body), 400, "ErrorDuplicateTransactionId")


def test_transaction_memory_for_a_time() -> None:
    # ... or for a while (a third reading of api/resources/event's silence).
    # A memory of 30 minutes at 1000× lasts 1.8 s of the test's: long enough that the repeat
    # lands inside it on a busy machine (a 60 s memory, 60 ms here, did not on CI).
    with (
        GraphFake(
            clock=FakeClock(scale=1000), behaviour=Behaviour(transaction_memory=1800.0)
        ) as fake,
        authorized(fake) as http,
    ):
        body = event_body(transactionId="tx-1")
        first = http.post("/events", json=body).json()["id"]
        assert http.post("/events", json=body | {"subject": "x"}).status_code == 400
        fake.clock.sleep(1801)
        later = http.post("/events", json=body | {"subject": "x"})
        assert later.status_code == 201
        assert later.json()["id"] != first


@pytest.mark.parametrize(("scope", "status"), [("mailbox", 201), ("application", 400)])
def test_transaction_scope_is_a_switch(
    fake: GraphFake, http: httpx.Client, scope: Literal["mailbox", "application"], status: int
) -> None:
    # api/resources/event does not say where a transactionId must be unique: per mailbox, or
    # per application; the client's ids include the mailbox, so either reading works.
    fake.behaviour.transaction_scope = scope
    body = event_body(transactionId="tx-1")
    assert http.post("/events", json=body).status_code == 201
    with authorized(fake, "bo.hansen@mediegruppen.dk") as other:
        assert other.post("/events", json=body).status_code == status


@pytest.mark.parametrize("status", [400, 409])
def test_the_duplicate_transaction_status_is_a_switch(
    fake: GraphFake, http: httpx.Client, status: int
) -> None:
    # ErrorDuplicateTransactionId comes as 400 in some reports and 409 in others; the
    # documentation names no status, so the client reads the code (docs/graph.md).
    fake.behaviour.duplicate_transaction_status = status
    body = event_body(transactionId="tx-1")
    http.post("/events", json=body)
    other = http.post("/events", json=body | {"subject": "Noget andet"})
    assert_graph_error(other, status, "ErrorDuplicateTransactionId")


@pytest.mark.parametrize("combined", [True, False])
def test_a_comma_joined_prefer_header_is_a_switch(
    fake: GraphFake, http: httpx.Client, combined: bool
) -> None:
    # RFC 7240 allows several preferences in one header; Graph's pages show one per header.
    fake.behaviour.combined_prefer = combined
    event_id = http.post("/events", json=event_body()).json()["id"]
    both = {"Prefer": 'IdType="ImmutableId", outlook.body-content-type="text"'}
    body = http.get(f"/events/{event_id}", headers=both).json()["body"]
    assert body["contentType"] == ("text" if combined else "html")
    separate = httpx.Headers(
        [("Prefer", 'IdType="ImmutableId"'), ("Prefer", 'outlook.body-content-type="text"')]
    )
    assert http.get(f"/events/{event_id}", headers=separate).json()["body"]["contentType"] == "text"


def test_the_fake_clock_runs_scaled() -> None:
    clock = FakeClock(scale=100)
    began, real = clock.monotonic(), time.monotonic()
    clock.sleep(20)  # 0.2 s of ours
    assert time.monotonic() - real >= 0.19
    assert clock.monotonic() - began >= 19.9
    assert clock.real_seconds(300) == 3.0
