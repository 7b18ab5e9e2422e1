"""The rules under the lanes, without servers: Graph errors by code, what `place` asks of the
calendar (and leaves to another mailbox), the request budget's window, the lanes' pauses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from calendar_sync.calendar import Placed, Remote
from calendar_sync.domain import ActivityView, CalendarEntry, Lifecycle
from calendar_sync.graph import (
    BudgetExhausted,
    ChangeKeyConflict,
    EventGone,
    GraphError,
    MailboxUnavailable,
    Throttled,
    _error,
    transaction_id_for,
)
from calendar_sync.lanes import Lanes, LaneSettings, RequestBudget
from calendar_sync.metrics import SyncMetrics
from calendar_sync.projector import place
from calendar_sync.state import MailboxState, SyncRecord
from crm_contracts.enums import ActivityType, Channel, SyncStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ANNA, BO = "anna@example.dk", "bo@example.dk"


def answer(status: int, code: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": "…"}},
        headers={"request-id": "r-1"},
        request=httpx.Request("GET", "https://graph.microsoft.com/v1.0/users/x/events/1"),
    )


@pytest.mark.parametrize(
    ("status", "code", "item", "kind"),
    [
        (404, "ErrorItemNotFound", True, EventGone),
        (404, "ErrorItemNotFound", False, MailboxUnavailable),  # a collection has no item
        (404, "ErrorInvalidUser", True, MailboxUnavailable),
        (404, "MailboxNotEnabledForRESTAPI", True, MailboxUnavailable),
        (404, "ResourceNotFound", True, MailboxUnavailable),
        (403, "ErrorAccessDenied", True, MailboxUnavailable),
        (403, "Authorization_RequestDenied", False, MailboxUnavailable),
        (412, "ErrorIrresolvableConflict", True, ChangeKeyConflict),
        (400, "ErrorInvalidRequest", True, GraphError),
    ],
)
def test_errors_are_read_by_their_code(
    status: int, code: str, item: bool, kind: type[GraphError]
) -> None:
    error = _error(answer(status, code), item=item)
    assert type(error) is kind
    assert (error.status, error.code, error.request_id) == (status, code, "r-1")


def test_a_new_attempt_gets_a_new_transaction_id_the_first_keeps_the_old_one() -> None:
    first = transaction_id_for("Anna@Example.dk", "act-1", 3)
    assert first == transaction_id_for("anna@example.dk", "act-1", 3, 0)
    assert len({first, *(transaction_id_for(ANNA, "act-1", 3, n) for n in (1, 2))}) == 3


class Pace:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    def real_seconds(self, seconds: float) -> float:
        return seconds


def test_the_budget_counts_a_sliding_window_and_says_how_long_to_wait() -> None:
    pace = Pace()
    budget = RequestBudget(pace, limit=3, window=600)
    budget(ANNA)  # not held here: not ours to count
    budget.load(ANNA, {})
    for _ in range(3):
        budget(ANNA)
        pace.sleep(100)
    with pytest.raises(BudgetExhausted) as spent:
        budget(ANNA)
    # The oldest request leaves the widened window (600 s plus a tenth) after 660 s.
    assert spent.value.wait == pytest.approx(660 - 300)
    pace.sleep(spent.value.wait)
    budget(ANNA)
    carried = budget.unload(ANNA)
    assert sum(carried.values()) == 3
    budget.load(ANNA, carried)  # the next holder starts from it
    with pytest.raises(BudgetExhausted):
        budget(ANNA)


class Recording:
    """A calendar port that records its calls and holds entries by (mailbox, activity)."""

    kind = "test"

    def __init__(self, found: list[Remote] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.found = found or []

    def create(
        self,
        mailbox: str,
        activity_id: str,
        entry: CalendarEntry,
        *,
        version: int,
        keep: str | None = None,
        look: bool = True,
    ) -> Placed:
        self.calls.append(("create", mailbox))
        return Placed(f"new-{mailbox}", "ck")

    def update(
        self, mailbox: str, activity_id: str, event_id: str, entry: CalendarEntry, *, version: int
    ) -> Placed | None:
        self.calls.append(("update", mailbox))
        return None if event_id == "deleted-by-user" else Placed(event_id, "ck2")

    def remove(self, mailbox: str, activity_id: str, event_id: str) -> None:
        self.calls.append((f"remove {event_id}", mailbox))

    def fetch(self, mailbox: str, activity_id: str, event_id: str) -> Remote | None:
        return None

    def find_all(self, mailbox: str, activity_id: str) -> list[Remote]:
        self.calls.append(("find_all", mailbox))
        return self.found

    def window(self, mailbox: str, start: datetime, end: datetime) -> list[Remote]:
        return []


VIEW = ActivityView(
    activity_id="a-1",
    customer_id="c-1",
    owner=ANNA,
    type=ActivityType.STATUS_MEETING,
    channel=Channel.PHYSICAL,
    subject="Status",
    agenda=None,
    starts_at=NOW,
    ends_at=NOW + timedelta(hours=1),
    lifecycle=Lifecycle.PLANNED,
    version=2,
)
ENTRY = CalendarEntry("s", "b", "l", ("CRM",), NOW, NOW + timedelta(hours=1))


def row(**changes: Any) -> SyncRecord:
    base = SyncRecord(
        activity_id="a-1",
        view=VIEW,
        version=2,
        mailbox=ANNA,
        event_id="evt-1",
        change_key="ck",
        status=SyncStatus.SYNCED,
        error=None,
        error_version=None,
        shown_name=None,
        revision=3,
        updated_at=NOW,
        due_at=NOW,
    )
    return replace(base, **changes)


def test_a_live_entry_in_the_owners_mailbox_is_updated() -> None:
    calendar = Recording()
    placed = place(calendar, row(), VIEW, ENTRY)
    assert calendar.calls == [("update", ANNA)]
    assert (placed.status, placed.event_id, placed.leftover) == (SyncStatus.SYNCED, "evt-1", None)


def test_an_update_that_finds_the_users_delete_records_it_and_creates_nothing() -> None:
    calendar = Recording()
    placed = place(calendar, row(event_id="deleted-by-user"), VIEW, ENTRY)
    assert calendar.calls == [("update", ANNA)]
    assert (placed.status, placed.user_deleted) == (SyncStatus.DELETED_IN_OUTLOOK, True)
    again = place(calendar, row(status=SyncStatus.DELETED_IN_OUTLOOK), VIEW, ENTRY)
    assert again.status is SyncStatus.DELETED_IN_OUTLOOK
    assert calendar.calls == [("update", ANNA)]  # not even looked at again


def test_a_reassigned_entry_is_created_first_and_the_old_one_left_to_its_lane() -> None:
    calendar = Recording()
    placed = place(calendar, row(), replace(VIEW, owner=BO), ENTRY)
    assert calendar.calls == [("create", BO)]  # nothing asked of Anna's mailbox here
    assert (placed.mailbox, placed.leftover) == (BO, (ANNA, "evt-1"))


def test_a_create_never_recorded_leaves_a_search_in_the_mailbox_it_may_be_in() -> None:
    calendar = Recording()
    unconfirmed = row(event_id=None, change_key=None, status=SyncStatus.PENDING)
    placed = place(calendar, unconfirmed, replace(VIEW, owner=BO), ENTRY)
    assert placed.leftover == (ANNA, "")  # '': any entry tagged with the activity


def test_cancelling_an_entry_never_recorded_removes_whatever_is_tagged() -> None:
    stray = Remote("stray", "ck", "s", NOW, NOW, "l", (), "busy", "a-1")
    calendar = Recording(found=[stray])
    unconfirmed = row(event_id=None, change_key=None, status=SyncStatus.PENDING)
    placed = place(calendar, unconfirmed, VIEW, None)
    assert calendar.calls == [("find_all", ANNA), ("remove stray", ANNA)]
    assert placed.status is SyncStatus.REMOVED


def test_a_mailbox_that_was_unavailable_keeps_its_entry() -> None:
    calendar = Recording()
    waiting = row(status=SyncStatus.MAILBOX_UNAVAILABLE, error="ErrorInvalidUser")
    placed = place(calendar, waiting, VIEW, ENTRY)
    assert calendar.calls == [("update", ANNA)]
    assert placed.status is SyncStatus.SYNCED


class MarkingState:
    """The one call `_pause_for` makes of the state: marking the mailbox's due rows."""

    def __init__(self) -> None:
        self.marked: list[str] = []

    def mark_unavailable(self, mailbox: str, code: str, at: datetime) -> int:
        self.marked.append(code)
        return 1


def lanes_with(pace: Pace, **settings: Any) -> tuple[Lanes, MarkingState]:
    state = MarkingState()
    projector = SimpleNamespace(state=state, calendar=Recording())
    lanes = Lanes(projector, SyncMetrics(), pace, LaneSettings(**settings))  # type: ignore[arg-type]
    return lanes, state


def lane(**changes: Any) -> MailboxState:
    return replace(MailboxState(ANNA, "me", None, None, None, None, None, 0), **changes)


def test_a_mailbox_that_refuses_us_is_looked_at_on_a_slow_doubling_schedule() -> None:
    pace = Pace()
    lanes, state = lanes_with(pace, unavailable_first_check=300, unavailable_max_check=1000)
    refused = MailboxUnavailable(404, "ErrorInvalidUser", "…")
    now, waits, current = pace.now(), [], lane()
    for _ in range(4):
        pause = lanes._pause_for(refused, current, wrote=False)
        assert pause.until is not None
        assert (pause.reason, pause.code, pause.since) == ("unavailable", "ErrorInvalidUser", now)
        waits.append((pause.until - now).total_seconds())
        current = lane(code=pause.code, since=pause.since, checks=pause.checks)
    assert waits == [300, 600, 1000, 1000]  # minutes, doubling, then the slowest schedule
    assert state.marked == ["ErrorInvalidUser"] * 4  # its due rows show why they wait


def test_retry_after_pauses_the_mailbox_for_as_long_but_never_beyond_the_cap() -> None:
    pace = Pace()
    lanes, _ = lanes_with(pace, retry_after_cap=600)
    for asked, paused in ((30, 30), (300, 300), (36_000, 600)):
        throttled = Throttled(429, "ApplicationThrottled", "…", retry_after=asked)
        pause = lanes._pause_for(throttled, lane(), wrote=False)
        assert pause.until is not None
        assert (pause.reason, (pause.until - pace.now()).total_seconds()) == ("throttled", paused)
    # An unavailable mailbox that is throttled too keeps its code until a write goes through.
    pause = lanes._pause_for(
        Throttled(429, "ApplicationThrottled", "…", retry_after=30),
        lane(code="ErrorAccessDenied", since=NOW, checks=2),
        wrote=False,
    )
    assert (pause.code, pause.checks) == ("ErrorAccessDenied", 2)
