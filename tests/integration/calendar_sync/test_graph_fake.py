"""The Graph fake itself, over plain httpx, against the facts in docs/graph.md."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import GraphFake

UPN = "anna.jensen@mediegruppen.dk"
PROP = "String {6d0c7d7e-3f8a-4e0b-9a51-2b6c4f1e8a37} Name CrmActivityId"
SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    with GraphFake(seed=7) as running:
        yield running


def get_token(fake: GraphFake) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "scope": SCOPE,
    }
    return str(httpx.post(fake.token_url, data=form).json()["access_token"])


@pytest.fixture
def http(fake: GraphFake) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {get_token(fake)}"}
    with httpx.Client(base_url=f"{fake.graph_url}/users/{UPN}", headers=headers) as client:
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
    assert (event["showAs"], event["sensitivity"], event["transactionId"]) == (
        "busy",
        "normal",
        None,
    )


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


def test_delete_is_204_then_the_event_is_not_found(http: httpx.Client) -> None:
    event_id = http.post("/events", json=event_body()).json()["id"]
    assert http.delete(f"/events/{event_id}").status_code == 204
    assert_graph_error(http.get(f"/events/{event_id}"), 404, "ErrorItemNotFound")
    assert_graph_error(http.delete(f"/events/{event_id}"), 404, "ErrorItemNotFound")
    assert_graph_error(
        http.patch(f"/events/{event_id}", json={"subject": "x"}), 404, "ErrorItemNotFound"
    )


def test_a_user_deleting_in_outlook_removes_the_event(fake: GraphFake, http: httpx.Client) -> None:
    event_id = http.post("/events", json=event_body()).json()["id"]
    fake.delete_as_user(UPN, event_id)
    assert fake.events(UPN) == []
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
def test_throttling_answers_429_with_a_fractional_retry_after(
    fake: GraphFake, http: httpx.Client
) -> None:
    fake.faults.throttle_ratio = 1.0
    answer = http.get("/events")
    assert_graph_error(answer, 429, "TooManyRequests")
    assert answer.headers["Retry-After"] == "0.05"
    assert fake.requests(UPN)[-1].outcome == "throttle"


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


def test_a_lost_create_response_can_look_like_a_504(fake: GraphFake, http: httpx.Client) -> None:
    fake.faults.lost_response_mode = "504"
    fake.faults.fail_next("lose_response", method="POST")
    assert_graph_error(http.post("/events", json=event_body()), 504, "GatewayTimeout")
    assert len(fake.events(UPN)) == 1


def test_scripted_faults_hit_the_next_matching_requests(
    fake: GraphFake, http: httpx.Client
) -> None:
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
    answers = _concurrent_gets(fake, http, 4)
    assert [a.status_code for a in answers] == [200] * 4
    assert fake.max_concurrency_seen(UPN) == 4
    assert fake.concurrency_rejections(UPN) == 0


def test_a_fifth_concurrent_request_is_throttled(fake: GraphFake, http: httpx.Client) -> None:
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
