"""The embedded default: the in-process transport and the iCalendar feed as the calendar.

The feed parses with the icalendar library and shows the scenario (one VEVENT per live
activity, SUMMARY / DTSTART / CATEGORIES / SEQUENCE as projected; a cancelled one omitted);
it is readable with the owner's secret token, which rotation replaces; a wrong token is 404."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from calendar_sync.feed import uid_for
from calendar_sync.service import Topics
from crm_contracts.enums import ActivityType
from crm_platform.auth import Authenticator, AuthMode, AuthSettings
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging.inprocess import InProcessBroker
from crm_platform.messaging.transport import InProcessTransport
from fastapi.testclient import TestClient
from icalendar import Calendar

from tests.integration.calendar_sync.support import (
    ANNA,
    BO,
    CPH,
    Activity,
    Harness,
    categories,
    customer,
)
from tests.support.polling import wait_until

MIA = "mia@example.dk"


def as_user(user: str, roles: str = "consultant") -> dict[str, str]:
    return {"X-Dev-User": user, "X-Dev-Roles": roles}


@pytest.fixture
def embedded(store: StoreLocation, tmp_path: Path) -> Iterator[Harness]:
    transport = InProcessTransport(InProcessBroker(str(tmp_path / "transport.sqlite")))
    suffix = uuid.uuid4().hex[:8]
    topics = Topics(
        activities=f"activities.{suffix}",
        customers=f"customers.{suffix}",
        status=f"sync.{suffix}",
        group=f"calendar-sync-{suffix}",
    )
    harness = Harness.build(transport, topics, store, tmp_path).start()
    yield harness
    harness.close()


@pytest.fixture
def client(embedded: Harness) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode=AuthMode.DEV), production_settings_present=False)
    with TestClient(embedded.service.api(auth)) as running:
        yield running


def parse(body: bytes) -> dict[str, Any]:
    calendar = Calendar.from_ical(body)
    return {str(e["uid"]): e for e in calendar.walk("VEVENT")}


def test_the_feed_shows_the_projected_scenario(embedded: Harness, client: TestClient) -> None:
    assert embedded.service.calendar.kind == "ics"
    embedded.send(customer("cust-1", "Bageriet Ørsted"))
    wait_until(lambda: embedded.service.state.customer_name("cust-1"), message="name")
    held = Activity()
    cancelled = Activity()
    dst = Activity(starts_at=datetime(2026, 10, 25, 10, 0, tzinfo=CPH))
    handed_over = Activity()
    embedded.send(
        held.planned(),
        cancelled.planned(),
        dst.planned(),
        handed_over.planned(),
        held.moved(datetime(2026, 3, 29, 10, 0, tzinfo=CPH)),
        held.retyped(ActivityType.SALES_MEETING),
        held.completed(),
        cancelled.cancelled(),
        handed_over.reassigned(BO),
    )
    for activity in (held, cancelled, dst, handed_over):
        embedded.applied(activity)

    answer = client.get(f"/calendars/{ANNA}.ics", headers=as_user(ANNA))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(answer.content)
    assert [str(z["tzid"]) for z in calendar.walk("VTIMEZONE")] == ["Europe/Copenhagen"]
    events = parse(answer.content)
    assert set(events) == {uid_for(str(held.id)), uid_for(str(dst.id))}

    shown = events[uid_for(str(held.id))]
    assert str(shown["summary"]) == "Aftalt salgsmøde: Annonceplan forår – Bageriet Ørsted"
    start = shown.decoded("dtstart")
    assert (start.hour, start.utcoffset()) == (10, timedelta(hours=2))
    assert shown["dtstart"].params["TZID"] == "Europe/Copenhagen"
    assert categories(shown) == ["CRM", "Aftalt salgsmøde", "Udført"]
    # One revision per write: the lane writes the latest view, so versions that arrived
    # together may make one revision (0 when the first write already showed them all).
    sequence = int(shown["sequence"])
    assert 0 <= sequence <= 3
    assert str(shown["location"]) == "Hos kunden"

    autumn = events[uid_for(str(dst.id))].decoded("dtstart")
    assert (autumn.hour, autumn.utcoffset()) == (10, timedelta(hours=1))
    assert int(events[uid_for(str(dst.id))]["sequence"]) == 0

    bos = parse(client.get(f"/calendars/{BO}.ics", headers=as_user(BO)).content)
    assert set(bos) == {uid_for(str(handed_over.id))}

    embedded.send(held.moved(datetime(2026, 3, 30, 10, 0, tzinfo=CPH)))
    embedded.applied(held)
    again = parse(client.get(f"/calendars/{ANNA}.ics", headers=as_user(ANNA)).content)
    assert int(again[uid_for(str(held.id))]["sequence"]) == sequence + 1


def test_the_secret_url_works_until_it_is_rotated(embedded: Harness, client: TestClient) -> None:
    act = Activity()
    embedded.send(act.planned())
    embedded.applied(act)
    first = client.post(f"/calendars/{ANNA}/token", headers=as_user(ANNA))
    assert first.status_code == 200
    url = urlsplit(first.json()["url"])
    assert url.path == f"/calendars/{ANNA}.ics"
    # Outlook sends no headers: the token in the URL is all it has.
    subscribed = client.get(f"{url.path}?{url.query}")
    assert subscribed.status_code == 200
    assert uid_for(str(act.id)) in parse(subscribed.content)

    second = client.post(f"/calendars/{ANNA}/token", headers=as_user(MIA, "sales_manager"))
    assert second.status_code == 200
    assert client.get(f"{url.path}?{url.query}").status_code == 404
    renewed = urlsplit(second.json()["url"])
    assert client.get(f"{renewed.path}?{renewed.query}").status_code == 200

    wrong = client.get(f"/calendars/{ANNA}.ics", params={"token": "guess"})
    never = client.get(f"/calendars/{BO}.ics", params={"token": "guess"})
    assert wrong.status_code == never.status_code == 404
    # Nothing tells an owner with a feed from one without (but the path that was asked for).
    assert wrong.json() | {"instance": ""} == never.json() | {"instance": ""}
    assert "guess" not in wrong.text


def test_who_may_read_and_rotate(embedded: Harness, client: TestClient) -> None:
    feed = f"/calendars/{ANNA}.ics"
    assert client.get(feed).status_code == 401
    assert client.get(feed, headers=as_user(BO)).status_code == 403
    assert client.get(feed, headers=as_user(MIA, "sales_manager")).status_code == 200
    assert client.get(feed, headers=as_user("svc", "service")).status_code == 200
    assert client.post(f"/calendars/{ANNA}/token", headers=as_user(BO)).status_code == 403
    assert client.post(f"/calendars/{ANNA}/token").status_code == 401


def test_one_entry_the_feed_cannot_render_is_parked_and_the_feed_still_answers(
    embedded: Harness, client: TestClient
) -> None:
    # Planted past the API's door (which refuses it now): the end of time in Copenhagen.
    end_of_time = Activity(starts_at=datetime(9999, 12, 31, 23, 0, tzinfo=UTC), minutes=30)
    fine = Activity()
    embedded.send(customer("cust-1", "Bageriet Ørsted"), end_of_time.planned(), fine.planned())
    embedded.applied(fine)
    embedded.applied(end_of_time)

    answers = [client.get(f"/calendars/{ANNA}.ics", headers=as_user(ANNA)) for _ in range(2)]

    assert [a.status_code for a in answers] == [200, 200]
    assert set(parse(answers[0].content)) == {uid_for(str(fine.id))}
    parked = client.get("/ops/parked", headers=as_user(MIA, "sales_manager"))
    assert parked.status_code == 200
    (entry,) = parked.json()  # once, however often the feed is read
    assert (entry["worker"], entry["subject"]) == (
        "calendar-sync-feed",
        uid_for(str(end_of_time.id)),
    )
    assert "Overflow" in entry["error"] or "range" in entry["error"]
    assert client.get("/ops/parked", headers=as_user(ANNA)).status_code == 403


def test_an_odd_owner_in_the_feed_path_is_a_422_not_a_500(client: TestClient) -> None:
    for owner in ("anna%00@example.dk", "anna", "a%2Fb@example.dk"):
        answer = client.get(f"/calendars/{owner}.ics", headers=as_user(MIA, "sales_manager"))

        assert answer.status_code in (404, 422), answer.text
        assert answer.headers["content-type"] == "application/problem+json"
