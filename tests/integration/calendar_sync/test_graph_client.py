"""calendar_sync.graph against the Graph fake: CRUD, DST, errors by their code, user deletes,
uncertain creates, duplicates, throttling and concurrency."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
import pytest
from calendar_sync.graph import (
    ACTIVITY_PROPERTY_ID,
    BudgetExhausted,
    ChangeKeyConflict,
    CreateUncertain,
    CreateUnresolved,
    EventGone,
    GraphCalendar,
    GraphError,
    MailboxUnavailable,
    OutlookEvent,
    RetryPolicy,
    SyncStatus,
    Throttled,
    transaction_id_for,
)
from calendar_sync.graph_auth import ClientCredentialsTokenProvider, MsalTokenProvider, TokenError

from tests.fakes import Behaviour, GraphFake

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
        running.faults.retry_after = "0.01"
        yield running


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def make_calendar(
    fake: GraphFake,
    sleep: RecordingSleep,
    retry: RetryPolicy | None = None,
    **options: Any,
) -> GraphCalendar:
    tokens = ClientCredentialsTokenProvider(fake.token_url, fake.client_id, fake.client_secret)
    return GraphCalendar(
        tokens,
        base_url=fake.graph_url,
        sleep=sleep,
        rng=random.Random(5),
        retry=retry or RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05),
        settle_seconds=options.pop("settle_seconds", 0.05),
        **options,
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


def ensure(calendar: GraphCalendar, activity_id: str, event: OutlookEvent | None = None) -> Any:
    result = calendar.ensure_event(UPN, event or meeting(), activity_id=activity_id, version=1)
    assert result.event is not None
    return result.event


def tagged(fake: GraphFake, activity_id: str) -> list[dict[str, Any]]:
    return fake.crm_events(UPN).get(activity_id, [])


# --- plain requests ------------------------------------------------------------------------------
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
    assert read.parent_folder is not None

    moved = meeting(datetime(2026, 3, 3, 13, 30, tzinfo=CPH), reminder_minutes=None)
    updated = calendar.update_event(UPN, created.id, moved, etag=read.etag)
    assert updated.start == datetime(2026, 3, 3, 12, 30, tzinfo=UTC)
    assert updated.reminder_minutes is None
    assert updated.change_key != created.change_key

    # DELETE moves it to Deleted Items (out of the calendar the user sees); a second purges.
    assert calendar.delete_event(UPN, created.id) is True
    assert fake.events(UPN) == []
    assert [e["id"] for e in fake.deleted_items(UPN)] == [created.id]
    assert calendar.delete_event(UPN, created.id) is True
    assert calendar.delete_event(UPN, created.id) is False
    with pytest.raises(EventGone):
        calendar.get_event(UPN, created.id)


def test_every_request_prefers_immutable_ids_and_text_in_separate_headers(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    ensure(calendar, "act-1")
    sent = fake.requests(UPN)
    assert sent
    for record in sent:
        assert 'IdType="ImmutableId"' in record.headers["prefer"]
        assert 'outlook.body-content-type="text"' in record.headers["prefer"]


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


# --- (1) errors by their Graph code --------------------------------------------------------------
def test_only_item_not_found_on_the_event_means_gone(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    created = ensure(calendar, "act-1")
    fake.purge_as_user(UPN, created.id)
    with pytest.raises(EventGone) as gone:
        calendar.get_event(UPN, created.id)
    assert gone.value.code == "ErrorItemNotFound"
    assert calendar.delete_event(UPN, created.id) is False


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("invalid_user", 404, "ErrorInvalidUser"),
        ("not_enabled", 404, "MailboxNotEnabledForRESTAPI"),
        ("access_denied", 403, "ErrorAccessDenied"),
    ],
)
def test_a_mailbox_that_refuses_us_is_unavailable_never_gone(
    fake: GraphFake,
    calendar: GraphCalendar,
    kind: Literal["invalid_user", "not_enabled", "access_denied"],
    status: int,
    code: str,
) -> None:
    created = ensure(calendar, "act-1")
    fake.mailbox_unavailable(UPN, kind)
    attempts = [
        lambda: calendar.get_event(UPN, created.id),
        lambda: calendar.update_event(UPN, created.id, meeting()),
        lambda: calendar.delete_event(UPN, created.id),
        lambda: calendar.find_by_activity(UPN, "act-1"),
        lambda: calendar.refresh_event(UPN, meeting(), activity_id="act-1", event_id=created.id),
        lambda: calendar.ensure_event(UPN, meeting(), activity_id="act-2"),
    ]
    for attempt in attempts:
        with pytest.raises(MailboxUnavailable) as refused:
            attempt()
        assert not isinstance(refused.value, EventGone)
        assert (refused.value.status, refused.value.code) == (status, code)
    fake.mailbox_available(UPN)
    assert calendar.get_event(UPN, created.id).id == created.id
    assert len(tagged(fake, "act-1")) == 1


def test_a_token_without_the_calendar_role_is_refused_like_a_mailbox(
    fake: GraphFake, sleep: RecordingSleep
) -> None:
    fake.add_app("read-only-app", "s3cret", ("User.Read.All",))
    tokens = ClientCredentialsTokenProvider(fake.token_url, "read-only-app", "s3cret")
    with (
        GraphCalendar(tokens, base_url=fake.graph_url, sleep=sleep) as client,
        pytest.raises(MailboxUnavailable) as refused,
    ):
        client.find_by_activity(UPN, "act-1")
    assert (refused.value.status, refused.value.code) == (403, "ErrorAccessDenied")


# --- (2) user deletes ---------------------------------------------------------------------------
def test_a_user_delete_to_deleted_items_is_seen_although_get_still_answers(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    created = ensure(calendar, "act-1")
    fake.delete_as_user(UPN, created.id)
    assert calendar.get_event(UPN, created.id).id == created.id  # the id survives the move
    result = calendar.refresh_event(
        UPN, meeting(subject="Flyttet"), activity_id="act-1", event_id=created.id
    )
    assert (result.status, result.why) == (SyncStatus.DELETED_IN_OUTLOOK, "deleted_items")
    assert fake.deleted_items(UPN)[0]["subject"] == created.subject  # not written to
    assert [r.method for r in fake.requests(UPN, "PATCH")] == []


def test_a_user_delete_is_seen_when_graph_answers_404_for_deleted_items(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.behaviour.deleted_item_get = "not_found"
    created = ensure(calendar, "act-1")
    fake.delete_as_user(UPN, created.id)
    result = calendar.refresh_event(UPN, meeting(), activity_id="act-1", event_id=created.id)
    assert (result.status, result.why) == (SyncStatus.DELETED_IN_OUTLOOK, "gone")


def test_a_move_to_deleted_items_between_read_and_write_is_not_overwritten(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    created = ensure(calendar, "act-1")
    real_get = calendar.get_event

    def get_then_user_deletes(mailbox: str, event_id: str) -> Any:
        read = real_get(mailbox, event_id)
        if read.parent_folder != calendar.deleted_items_folder(mailbox):
            fake.delete_as_user(UPN, event_id)  # the user acts between our GET and PATCH
        return read

    calendar.get_event = get_then_user_deletes  # type: ignore[method-assign]
    result = calendar.refresh_event(
        UPN, meeting(subject="Ny titel"), activity_id="act-1", event_id=created.id
    )
    assert result.status is SyncStatus.DELETED_IN_OUTLOOK
    assert [r.status for r in fake.requests(UPN, "PATCH")] == [412]
    assert fake.deleted_items(UPN)[0]["subject"] == created.subject


def test_an_unchanged_event_is_not_written_again(fake: GraphFake, calendar: GraphCalendar) -> None:
    created = ensure(calendar, "act-1")
    result = calendar.refresh_event(UPN, meeting(), activity_id="act-1", event_id=created.id)
    assert result.status is SyncStatus.UPDATED
    assert fake.requests(UPN, "PATCH") == []


def test_a_stale_etag_is_a_change_key_conflict(fake: GraphFake, calendar: GraphCalendar) -> None:
    created = calendar.create_event(UPN, meeting(), activity_id="act-1")
    fake.update_as_user(UPN, created.id, {"subject": "Ændret i Outlook"})
    with pytest.raises(ChangeKeyConflict):
        calendar.update_event(UPN, created.id, meeting(), etag=created.etag)
    assert fake.events(UPN)[0]["subject"] == "Ændret i Outlook"


# --- (3) never one signal for "created" --------------------------------------------------------
def test_the_first_create_looks_for_a_tagged_event_before_posting(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    ensure(calendar, "act-1")
    assert [r.method for r in fake.requests(UPN)] == ["GET", "POST"]


@pytest.mark.parametrize("mode", ["drop", "504", "503", "500"])
def test_a_lost_create_answer_is_resolved_by_looking_not_by_a_second_post(
    fake: GraphFake, calendar: GraphCalendar, mode: Literal["drop", "504", "503", "500"]
) -> None:
    fake.faults.lost_response_mode = mode
    fake.faults.fail_next("lose_response", method="POST")
    created = ensure(calendar, "act-lost")
    events = fake.events(UPN)
    assert len(events) == 1
    assert created.id == events[0]["id"]
    assert events[0]["singleValueExtendedProperties"] == [
        {"id": ACTIVITY_PROPERTY_ID, "value": "act-lost"}
    ]
    assert [r.method for r in fake.requests(UPN)] == ["GET", "POST", "GET"]


def test_a_create_stored_late_is_found_on_the_second_look(
    fake: GraphFake, sleep: RecordingSleep
) -> None:
    fake.faults.late_store_delay = 0.1
    fake.faults.fail_next("late_store", method="POST")
    with make_calendar(fake, sleep, settle_seconds=0.5) as client:
        ensure(client, "act-late")
    assert fake.pending_stores() == 0
    assert len(tagged(fake, "act-late")) == 1
    assert [r.method for r in fake.requests(UPN)] == ["GET", "POST", "GET", "GET"]
    assert 0.5 in sleep.pauses


def test_a_client_timeout_while_graph_still_works_creates_no_duplicate(
    fake: GraphFake, sleep: RecordingSleep
) -> None:
    fake.faults.slow_create_seconds = 0.6
    fake.faults.fail_next("slow_create", method="POST")
    with make_calendar(fake, sleep, settle_seconds=1.0, http=httpx.Client(timeout=0.3)) as client:
        ensure(client, "act-slow")
    assert len(tagged(fake, "act-slow")) == 1
    posts = fake.requests(UPN, "POST")
    assert len(posts) == 1
    assert posts[0].outcome == "slow_create"


def test_nothing_found_after_an_uncertain_create_posts_again_with_a_new_transaction_id(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.faults.fail_next("gateway_timeout", method="POST")  # 504 before anything is stored
    ensure(calendar, "act-1")
    posts = fake.requests(UPN, "POST")
    assert [r.method for r in fake.requests(UPN)] == ["GET", "POST", "GET", "GET", "POST"]
    assert [p.status for p in posts] == [504, 201]
    assert tagged(fake, "act-1")[0]["transactionId"] == transaction_id_for(UPN, "act-1", 1, 1)


@pytest.mark.parametrize("status", [400, 409])
def test_a_duplicate_transaction_id_is_an_uncertain_outcome_resolved_by_looking(
    fake: GraphFake, calendar: GraphCalendar, status: int
) -> None:
    fake.behaviour.duplicate_transaction_status = status
    first = ensure(calendar, "act-1")
    # The state never learned of `first` (a crash) and the user moved it out of the default
    # calendar's sight into Deleted Items: the same version's transactionId is taken.
    fake.delete_as_user(UPN, first.id)
    changed = meeting(subject="Oplægsmøde: Tilbud – Bageriet Ørsted")
    with pytest.raises(CreateUncertain):
        calendar.create_event(
            UPN, changed, activity_id="act-1", transaction_id=transaction_id_for(UPN, "act-1", 1)
        )
    second = ensure(calendar, "act-1", changed)
    assert second.id != first.id
    assert [e["subject"] for e in fake.events(UPN)] == [changed.subject]


def test_a_remembered_transaction_id_of_a_purged_event_gets_a_new_one(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.behaviour.transaction_memory = "forever"
    first = ensure(calendar, "act-1")
    fake.purge_as_user(UPN, first.id)
    second = ensure(calendar, "act-1")
    assert second.transaction_id == transaction_id_for(UPN, "act-1", 1, 1)
    assert len(tagged(fake, "act-1")) == 1


def test_creates_that_never_resolve_give_up_without_a_duplicate(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.faults.fail_next("gateway_timeout", times=3, method="POST")
    with pytest.raises(GraphError) as raised:
        ensure(calendar, "act-1")
    assert raised.value.code == "CreateUnresolved"
    assert fake.events(UPN) == []


# --- (4) duplicates -----------------------------------------------------------------------------
def test_every_tagged_event_is_found_and_the_known_one_kept(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.create_as_user(UPN, meeting().to_graph())  # the user's own appointment
    made = [
        calendar.create_event(UPN, meeting(), activity_id="act-1", transaction_id=f"tx-{n}")
        for n in range(12)  # more than a page of 10
    ]
    found = calendar.find_by_activity(UPN, "act-1")
    assert sorted(e.id for e in found) == sorted(e.id for e in made)
    known = made[7]
    result = calendar.ensure_event(UPN, meeting(), activity_id="act-1", keep=known.id)
    assert result.event is not None
    assert (result.event.id, result.duplicates_removed) == (known.id, 11)
    assert [e["id"] for e in tagged(fake, "act-1")] == [known.id]
    assert len(fake.events(UPN)) == 2  # the user's own appointment stays


def test_without_a_known_one_the_event_already_showing_the_entry_is_kept(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    stale = calendar.create_event(UPN, meeting(subject="old"), activity_id="a", transaction_id="1")
    current = calendar.create_event(UPN, meeting(), activity_id="a", transaction_id="2")
    result = calendar.ensure_event(UPN, meeting(), activity_id="a")
    assert result.event is not None
    assert result.event.id == current.id
    assert stale.id not in {e["id"] for e in fake.events(UPN)}
    assert fake.requests(UPN, "PATCH") == []


def test_find_by_activity_sees_only_our_tagged_events_in_the_default_calendar(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.create_as_user(UPN, meeting().to_graph())
    assert calendar.find_by_activity(UPN, "act-1") == []
    created = ensure(calendar, "act-1")
    ensure(calendar, "o'brien")
    found = calendar.find_by_activity(UPN, "act-1")
    assert [(e.id, e.activity_id) for e in found] == [(created.id, "act-1")]
    assert calendar.find_by_activity(UPN, "o'brien")
    fake.delete_as_user(UPN, created.id)
    assert calendar.find_by_activity(UPN, "act-1") == []  # Deleted Items is no calendar


def test_calendar_view_lists_the_window_with_our_tag(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    for n in range(12):
        ensure(
            calendar,
            f"act-{n}",
            meeting(datetime(2026, 3, 2, 8, 0, tzinfo=CPH) + timedelta(days=n)),
        )
    fake.create_as_user(UPN, meeting().to_graph())
    seen = calendar.calendar_view(
        UPN, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)
    )
    assert sorted(e.activity_id or "-" for e in seen) == sorted(
        ["-", *(f"act-{n}" for n in range(6))]
    )


# --- throttling, budget, concurrency ------------------------------------------------------------
def test_short_throttling_is_retried_in_place_honouring_retry_after(
    fake: GraphFake, calendar: GraphCalendar, sleep: RecordingSleep
) -> None:
    fake.faults.fail_next("throttle", method="POST")
    fake.faults.fail_next("unavailable", method="GET")
    fake.faults.retry_after = "0.07"
    ensure(calendar, "act-1")
    assert sleep.pauses == [0.07, 0.07]
    statuses = [r.status for r in fake.requests(UPN)]
    assert statuses == [503, 200, 429, 201]
    gaps = [b.started - a.finished for a, b in itertools.pairwise(fake.requests(UPN)) if a.finished]
    assert all(gap >= 0.07 for gap in gaps[:1])
    assert len(fake.events(UPN)) == 1


def test_a_long_retry_after_is_raised_capped_for_the_lane_to_pause(
    fake: GraphFake, sleep: RecordingSleep
) -> None:
    fake.faults.retry_after = None  # Graph's whole seconds, 30 to 300
    fake.faults.fail_next("throttle")
    retry = RetryPolicy(retry_after_cap=120.0)
    with make_calendar(fake, sleep, retry=retry) as client, pytest.raises(Throttled) as raised:
        client.find_by_activity(UPN, "act-1")
    header = fake.requests(UPN)[0]
    assert header.status == 429
    assert raised.value.retry_after is not None
    assert raised.value.retry_after == int(raised.value.retry_after)
    assert 30 <= raised.value.retry_after <= 120
    assert sleep.pauses == []  # nothing waited in place
    assert len(fake.requests(UPN)) == 1


def test_retries_give_up_with_the_last_graph_error(fake: GraphFake, sleep: RecordingSleep) -> None:
    fake.faults.throttle_ratio = 1.0
    with (
        make_calendar(fake, sleep, retry=RetryPolicy(max_attempts=3)) as calendar,
        pytest.raises(Throttled) as raised,
    ):
        calendar.get_event(UPN, "whatever")
    assert (raised.value.status, raised.value.code) == (429, "TooManyRequests")
    assert len(fake.requests(UPN)) == 3


def test_backoff_without_retry_after_is_capped_full_jitter() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0, retry_after_cap=30.0)
    rng = random.Random(1)
    delays = [policy.delay(attempt, None, rng) for attempt in range(10) for _ in range(50)]
    assert all(0.0 <= d <= 1.0 for d in delays)
    assert max(delays[:50]) <= 0.1  # attempt 0: at most base_delay
    assert policy.delay(3, 0.25, rng) == 0.25  # Retry-After wins
    assert policy.delay(3, 3600.0, rng) == 30.0  # ... up to the cap


def test_the_meter_stops_a_request_before_it_is_sent(
    fake: GraphFake, sleep: RecordingSleep
) -> None:
    spent: list[str] = []

    def meter(mailbox: str) -> None:
        if len(spent) >= 2:
            raise BudgetExhausted(mailbox, 42.0)
        spent.append(mailbox)

    with make_calendar(fake, sleep, meter=meter) as client:
        ensure(client, "act-1")
        with pytest.raises(BudgetExhausted):
            client.find_by_activity(UPN, "act-1")
    assert spent == [UPN, UPN]
    assert len(fake.requests(UPN)) == 2


def test_fifty_parallel_creates_never_exceed_four_requests_per_mailbox(
    fake: GraphFake, calendar: GraphCalendar
) -> None:
    fake.faults.latency = 0.02  # keep requests in flight long enough to overlap
    with ThreadPoolExecutor(max_workers=50) as pool:
        created = list(pool.map(lambda n: ensure(calendar, f"act-{n}"), range(50)))
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
    fake: GraphFake, sleep: RecordingSleep
) -> None:
    fake.faults.throttle_ratio = 0.2
    fake.faults.unavailable_ratio = 0.1
    fake.faults.lose_create_response_ratio = 0.2
    fake.faults.lost_response_mode = "504"
    # Throttling holds the whole mailbox: ten threads meet each other's Retry-After often.
    retry = RetryPolicy(max_attempts=100, base_delay=0.01, max_delay=0.05)

    def eventually(activity_id: str) -> Any:
        # Three uncertain creates in a row (a 503 can meet a mailbox that another thread's
        # throttling holds) end CreateUnresolved; the lane's row then stays due and is tried
        # again, which is what this does. Exactly one event must come of it either way.
        for _ in range(20):
            try:
                return ensure(calendar, activity_id)
            except CreateUnresolved:
                continue
        raise AssertionError(f"{activity_id} never resolved")

    with make_calendar(fake, sleep, retry=retry) as calendar, ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda n: eventually(f"a{n}"), range(30)))
    found = [e["singleValueExtendedProperties"][0]["value"] for e in fake.events(UPN)]
    assert sorted(found) == sorted(f"a{n}" for n in range(30))
    assert any(r.outcome == "lost_response" for r in fake.requests(UPN))
    assert fake.max_concurrency_seen(UPN) <= 4


# --- tokens ---------------------------------------------------------------------------------
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


def test_behaviour_switches_default_to_the_documented_reading() -> None:
    # The defaults docs/graph.md names for the open points.
    assert Behaviour() == Behaviour(
        transaction_memory="event",
        transaction_scope="mailbox",
        duplicate_transaction_status=400,
        deleted_item_get="ok",
        delete_moves_to_deleted_items=True,
        combined_prefer=True,
    )
