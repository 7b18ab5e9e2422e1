"""calendar_sync.graph against the Graph fake: CRUD, DST, retries, lost answers, concurrency."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from calendar_sync.graph import (
    ACTIVITY_PROPERTY_ID,
    ChangeKeyConflict,
    EventGone,
    GraphCalendar,
    GraphError,
    OutlookEvent,
    RetryPolicy,
    SyncStatus,
    transaction_id_for,
)
from calendar_sync.graph_auth import ClientCredentialsTokenProvider, MsalTokenProvider, TokenError

from tests.fakes import GraphFake

UPN = "anna.jensen@mediegruppen.dk"
CPH = ZoneInfo("Europe/Copenhagen")


class RecordingSleep:
    """Sleeps for real (the fake's Retry-After is short) and remembers each pause."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.pauses.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    with GraphFake(seed=11) as running:
        yield running


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def make_calendar(
    fake: GraphFake, sleep: RecordingSleep, retry: RetryPolicy | None = None
) -> GraphCalendar:
    tokens = ClientCredentialsTokenProvider(fake.token_url, fake.client_id, fake.client_secret)
    return GraphCalendar(
        tokens,
        base_url=fake.graph_url,
        sleep=sleep,
        rng=random.Random(5),
        retry=retry or RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05),
    )


@pytest.fixture
def calendar(fake: GraphFake, sleep: RecordingSleep) -> Iterator[GraphCalendar]:
    with make_calendar(fake, sleep) as client:
        yield client


def meeting(start: datetime | None = None, **changes: Any) -> OutlookEvent:
    begin = start or datetime(2026, 3, 2, 10, 0, tzinfo=CPH)
    base = OutlookEvent(
        subject="Afdækningsmøde: Årsplan 2027 – Bageriet Ørsted",
        body="Dagsorden:\nForretning, mål og planer",
        start=begin,
        end=begin + timedelta(hours=1),
        location="Bageriet Ørsted, Vesterbro",
        categories=("CRM", "Afdækningsmøde"),
        reminder_minutes=30,
    )
    return replace(base, **changes)


def test_create_get_update_delete(fake: GraphFake, calendar: GraphCalendar) -> None:
    created = calendar.create_event(UPN, meeting(), activity_id="act-1")
    assert created.subject == "Afdækningsmøde: Årsplan 2027 – Bageriet Ørsted"
    assert created.start == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert created.categories == ("CRM", "Afdækningsmøde")
    assert created.reminder_minutes == 30
    assert created.transaction_id == transaction_id_for(UPN, "act-1")

    read = calendar.get_event(UPN, created.id)
    assert read.activity_id == "act-1"
    assert read.body == "Dagsorden:\nForretning, mål og planer"
    assert read.location == "Bageriet Ørsted, Vesterbro"

    moved = meeting(datetime(2026, 3, 3, 13, 30, tzinfo=CPH), reminder_minutes=None)
    updated = calendar.update_event(UPN, created.id, moved, etag=read.etag)
    assert updated.start == datetime(2026, 3, 3, 12, 30, tzinfo=UTC)
    assert updated.reminder_minutes is None
    assert updated.change_key != created.change_key

    assert calendar.delete_event(UPN, created.id) is True
    assert fake.events(UPN) == []
    with pytest.raises(EventGone):
        calendar.get_event(UPN, created.id)


def test_every_request_prefers_immutable_ids(fake: GraphFake, calendar: GraphCalendar) -> None:
    calendar.create_event(UPN, meeting(), activity_id="act-1")
    sent = fake.requests(UPN)
    assert sent
    assert all('IdType="ImmutableId"' in r.headers["prefer"] for r in sent)


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [(datetime(2026, 3, 29), 8), (datetime(2026, 10, 25), 9)],
    ids=["last-sunday-of-march", "last-sunday-of-october"],
)
def test_ten_oclock_copenhagen_stays_ten_across_dst(
    fake: GraphFake, calendar: GraphCalendar, day: datetime, utc_hour: int
) -> None:
    start = day.replace(hour=10, tzinfo=CPH)
    created = calendar.create_event(UPN, meeting(start), activity_id=f"act-{day:%m%d}")
    stored = fake.events(UPN)[0]
    assert stored["start"] == {
        "dateTime": f"{day:%Y-%m-%d}T{utc_hour:02d}:00:00.0000000",
        "timeZone": "UTC",
    }
    assert stored["originalStartTimeZone"] == "Romance Standard Time"
    assert created.start.astimezone(CPH).hour == 10


def test_throttling_and_unavailability_are_retried_honouring_retry_after(
    fake: GraphFake, calendar: GraphCalendar, sleep: RecordingSleep
) -> None:
    fake.faults.fail_next("throttle", method="POST")
    fake.faults.fail_next("unavailable", method="POST")
    fake.faults.retry_after = "0.07"
    calendar.create_event(UPN, meeting(), activity_id="act-1")
    assert sleep.pauses == [0.07, 0.07]
    posts = fake.requests(UPN, "POST")
    assert [r.status for r in posts] == [429, 503, 201]
    gaps = [b.started - a.finished for a, b in itertools.pairwise(posts) if a.finished]
    assert all(gap >= 0.07 for gap in gaps)
    assert len(fake.events(UPN)) == 1


def test_retries_give_up_with_the_last_graph_error(fake: GraphFake, sleep: RecordingSleep) -> None:
    fake.faults.throttle_ratio = 1.0
    with (
        make_calendar(fake, sleep, retry=RetryPolicy(max_attempts=3)) as calendar,
        pytest.raises(GraphError) as raised,
    ):
        calendar.get_event(UPN, "whatever")
    assert (raised.value.status, raised.value.code) == (429, "TooManyRequests")
    assert len(fake.requests(UPN)) == 3


def test_backoff_without_retry_after_is_capped_full_jitter() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    rng = random.Random(1)
    delays = [policy.delay(attempt, None, rng) for attempt in range(10) for _ in range(50)]
    assert all(0.0 <= d <= 1.0 for d in delays)
    assert max(delays[:50]) <= 0.1  # attempt 0: at most base_delay
    assert policy.delay(3, 0.25, rng) == 0.25  # Retry-After wins


@pytest.mark.parametrize("mode", ["drop", "504"])
def test_a_lost_create_response_is_resolved_by_lookup_not_a_second_post(
    fake: GraphFake, calendar: GraphCalendar, mode: str
) -> None:
    fake.faults.lost_response_mode = mode  # type: ignore[assignment]
    fake.faults.fail_next("lose_response", method="POST")
    created = calendar.create_event(UPN, meeting(), activity_id="act-lost")
    events = fake.events(UPN)
    assert len(events) == 1
    assert created.id == events[0]["id"]
    assert created.activity_id == "act-lost"
    assert events[0]["singleValueExtendedProperties"] == [
        {"id": ACTIVITY_PROPERTY_ID, "value": "act-lost"}
    ]
    assert [r.method for r in fake.requests(UPN)] == ["POST", "GET"]


def test_a_504_that_created_nothing_is_looked_up_then_posted_again(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.faults.fail_next("gateway_timeout", method="POST")
    calendar.create_event(UPN, meeting(), activity_id="act-1")
    assert [r.method for r in fake.requests(UPN)] == ["POST", "GET", "POST"]
    assert len(fake.events(UPN)) == 1


def test_a_repeated_create_with_other_content_updates_the_event_it_made(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    first = calendar.create_event(UPN, meeting(), activity_id="act-1")
    changed = meeting(subject="Oplægsmøde: Tilbud – Bageriet Ørsted")
    second = calendar.create_event(UPN, changed, activity_id="act-1")
    assert (second.id, second.activity_id) == (first.id, "act-1")
    assert [e["subject"] for e in fake.events(UPN)] == ["Oplægsmøde: Tilbud – Bageriet Ørsted"]


def test_find_by_activity_sees_only_our_tagged_events(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.create_as_user(UPN, meeting().to_graph())  # the user's own appointment
    assert calendar.find_by_activity(UPN, "act-1") is None
    created = calendar.create_event(UPN, meeting(), activity_id="act-1")
    calendar.create_event(UPN, meeting(), activity_id="o'brien")
    found = calendar.find_by_activity(UPN, "act-1")
    assert found is not None
    assert (found.id, found.activity_id) == (created.id, "act-1")
    assert calendar.find_by_activity(UPN, "o'brien") is not None


def test_deleting_an_already_deleted_event_is_done(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    created = calendar.create_event(UPN, meeting(), activity_id="act-1")
    fake.delete_as_user(UPN, created.id)
    assert calendar.delete_event(UPN, created.id) is False


def test_updating_an_event_the_user_deleted_raises_event_gone(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    created = calendar.create_event(UPN, meeting(), activity_id="act-1")
    fake.delete_as_user(UPN, created.id)
    with pytest.raises(EventGone) as raised:
        calendar.update_event(UPN, created.id, meeting(subject="Flyttet"))
    assert raised.value.code == "ErrorItemNotFound"


def test_sync_does_not_recreate_an_event_deleted_in_outlook(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    first = calendar.sync_event(UPN, meeting(), activity_id="act-1")
    assert first.status is SyncStatus.CREATED
    assert first.event is not None
    again = calendar.sync_event(
        UPN, meeting(subject="v2"), activity_id="act-1", event_id=first.event.id
    )
    assert again.status is SyncStatus.UPDATED
    fake.delete_as_user(UPN, first.event.id)
    gone = calendar.sync_event(
        UPN, meeting(subject="v3"), activity_id="act-1", event_id=first.event.id
    )
    assert (gone.status, gone.event) == (SyncStatus.DELETED_IN_OUTLOOK, None)
    assert gone.status == "deleted_in_outlook"
    assert fake.events(UPN) == []
    assert len(fake.requests(UPN, "POST")) == 1


def test_a_stale_etag_is_a_change_key_conflict(fake: GraphFake, calendar: GraphCalendar) -> None:
    created = calendar.create_event(UPN, meeting(), activity_id="act-1")
    fake.update_as_user(UPN, created.id, {"subject": "Ændret i Outlook"})
    with pytest.raises(ChangeKeyConflict):
        calendar.update_event(UPN, created.id, meeting(), etag=created.etag)
    assert fake.events(UPN)[0]["subject"] == "Ændret i Outlook"


def test_fifty_parallel_creates_never_exceed_four_requests_per_mailbox(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.faults.latency = 0.02  # keep requests in flight long enough to overlap
    with ThreadPoolExecutor(max_workers=50) as pool:
        created = list(
            pool.map(
                lambda n: calendar.create_event(UPN, meeting(), activity_id=f"act-{n}"), range(50)
            )
        )
    assert len({e.id for e in created}) == 50
    assert len(fake.events(UPN)) == 50
    assert fake.max_concurrency_seen(UPN) == 4
    assert fake.concurrency_rejections(UPN) == 0


def test_the_limit_is_per_mailbox(fake: GraphFake, calendar: GraphCalendar) -> None:
    # Long enough that all four of a mailbox overlap even when the machine is busy.
    fake.faults.latency = 0.3
    mailboxes = ["a@mediegruppen.dk", "b@mediegruppen.dk"]
    began = threading.Barrier(8)

    def create(n: int) -> None:
        began.wait()
        calendar.create_event(mailboxes[n % 2], meeting(), activity_id=f"act-{n}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(8)))
    assert [fake.max_concurrency_seen(m) for m in mailboxes] == [4, 4]


def test_chaos_leaves_exactly_one_event_per_activity(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.faults.throttle_ratio = 0.2
    fake.faults.unavailable_ratio = 0.1
    fake.faults.lose_create_response_ratio = 0.2
    fake.faults.retry_after = "0.01"
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(
            pool.map(
                lambda n: calendar.create_event(UPN, meeting(), activity_id=f"a{n}"), range(30)
            )
        )
    tagged = [e["singleValueExtendedProperties"][0]["value"] for e in fake.events(UPN)]
    assert sorted(tagged) == sorted(f"a{n}" for n in range(30))
    assert any(r.outcome == "lost_response" for r in fake.requests(UPN))
    assert fake.max_concurrency_seen(UPN) <= 4


def test_the_token_is_fetched_once_for_many_calls(fake: GraphFake, calendar: GraphCalendar) -> None:
    created = calendar.create_event(UPN, meeting(), activity_id="act-1")
    for _ in range(10):
        calendar.get_event(UPN, created.id)
    assert fake.token_requests == 1


def test_a_token_graph_refuses_is_renewed_once(fake: GraphFake, calendar: GraphCalendar) -> None:
    created = calendar.create_event(UPN, meeting(), activity_id="act-1")
    fake.expire_tokens()
    assert calendar.get_event(UPN, created.id).id == created.id
    assert fake.token_requests == 2


def test_the_token_cache_renews_a_minute_before_expiry(fake: GraphFake) -> None:
    now = [0.0]
    tokens = ClientCredentialsTokenProvider(
        fake.token_url, fake.client_id, fake.client_secret, clock=lambda: now[0]
    )
    first = tokens.token()
    now[0] = 3599 - 61
    assert tokens.token() == first
    now[0] = 3599 - 59
    assert tokens.token() != first
    assert fake.token_requests == 2


def test_wrong_credentials_are_a_token_error(fake: GraphFake) -> None:
    tokens = ClientCredentialsTokenProvider(fake.token_url, fake.client_id, "wrong")
    with pytest.raises(TokenError, match="invalid_client"):
        tokens.token()


def test_the_msal_provider_does_nothing_until_asked_for_a_token() -> None:
    # MSAL would fetch the tenant's OpenID configuration in its constructor: building the
    # provider must not, so wiring the service up never needs the network.
    provider = MsalTokenProvider("tenant", "client", "secret")
    provider.invalidate()


def test_outlook_event_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        meeting(datetime(2026, 3, 2, 10, 0))
