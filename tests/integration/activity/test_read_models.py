"""The activity read models, fed from the real notification log on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from activity.application import ActivityApplication
from activity.domain import (
    AttachmentRequest,
    CompletionRequest,
    PlanRequest,
    RegistrationRequest,
)
from activity.projections import (
    ACTIVITY_TOPICS,
    REBUILD_NAME,
    ActivityReadModel,
    compare,
    follower,
    rebuild,
)
from activity.read_queries import InvalidCursor
from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason, Segment
from eventsourcing.persistence import IntegrityError

from tests.support.clock import ManualClock
from tests.support.people import ANNA, BO, MIA

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the ManualClock's start: Monday 09:00 in Denmark
VALUABLE_NOTE = "Kunden vil annoncere op til påske i både avis og online, budget ca. 40.000 kr."


def at(days: float, hour: int = 9) -> datetime:
    """A moment `days` after T0's date, at `hour` UTC."""
    return T0.replace(hour=hour) + timedelta(days=days)


@pytest.fixture
def view(env: dict[str, str]) -> Iterator[ActivityReadModel]:
    rm = ActivityReadModel(env)
    yield rm
    rm.close()


@dataclass
class Sales:
    """Drives the application the way the API would, with short names for the tests."""

    app: ActivityApplication

    def plan(
        self,
        customer: str,
        when: datetime,
        *,
        owner: str = ANNA.user_id,
        type_: ActivityType = ActivityType.CONTACT,
        channel: Channel = Channel.PHONE,
        subject: str = "Forårskampagne",
    ) -> UUID:
        actor = ANNA if owner == ANNA.user_id else BO
        request = PlanRequest(
            customer, owner, type_, channel, subject, when, when + timedelta(hours=1)
        )
        return self.app.plan(actor, request).activity.id


@pytest.fixture
def sales(app: ActivityApplication, add_customer: Callable[..., object]) -> Sales:
    add_customer("K1", "Alfa Reklame", Segment.C)
    add_customer("K2", "Bager Hansen", Segment.A)
    add_customer("K3", "Cykel Centret", Segment.B)
    add_customer("K4", "Dyrlaege Nord", Segment.D)
    add_customer("K5", "Elektro Syd", Segment.A)
    return Sales(app)


@dataclass
class History:
    a1: UUID  # K1 contact, moved twice, retyped
    a2: UUID  # K2 status meeting, completed with a4 planned as the next activity
    a3: UUID  # K3 sales meeting, moved, reassigned to Anna, cancelled
    a4: UUID
    a5: UUID  # K3's remaining future activity
    r1: UUID  # K4 registered contact


def make_history(sales: Sales) -> History:
    app = sales.app
    a1 = sales.plan("K1", at(1))
    a2 = sales.plan(
        "K2",
        at(2, 10),
        type_=ActivityType.STATUS_MEETING,
        channel=Channel.PHYSICAL,
        subject="Status på kampagne",
    )
    a3 = sales.plan("K3", at(3), owner=BO.user_id, type_=ActivityType.SALES_MEETING)
    app.move(ANNA, a1, starts_at=at(4), ends_at=None, reason=MoveReason.NO_ANSWER, note=None)
    app.move(ANNA, a1, starts_at=at(5), ends_at=None, reason=MoveReason.CUSTOMER_REQUEST, note=None)
    app.move(BO, a3, starts_at=at(6), ends_at=None, reason=MoveReason.CONSULTANT, note=None)
    app.reassign(MIA, a3, owner=ANNA.user_id)
    app.retype(ANNA, a1, type_=ActivityType.SALES_MEETING, channel=None, reason="Vil købe")
    r1 = app.register(
        ANNA,
        RegistrationRequest(
            customer_id="K4",
            owner=ANNA.user_id,
            type=ActivityType.CONTACT,
            channel=Channel.PHONE,
            held_at=T0 - timedelta(hours=1),
            note=VALUABLE_NOTE,
        ),
    ).activity.id
    next_meeting = PlanRequest(
        "K2",
        ANNA.user_id,
        ActivityType.STATUS_MEETING,
        Channel.VIDEO,
        "Opfølgning",
        at(30, 12),
        at(30, 13),
    )
    completed = app.complete(
        ANNA,
        a2,
        CompletionRequest(
            note=VALUABLE_NOTE,
            next_step="Send tilbud på online-pakke",
            attachments=[
                AttachmentRequest(
                    AttachmentKind.EMAIL, "referat.eml", "message/rfc822", 10, "0" * 64, "s3://x"
                )
            ],
            next_activity=next_meeting,
        ),
    )
    a4 = completed.activity.next_activity_id
    assert a4 is not None
    a5 = sales.plan("K3", at(10), owner=BO.user_id)
    app.cancel(ANNA, a3, reason="Kunden har lukket butikken i marts")
    return History(a1, a2, a3, a4, a5, r1)


def caught_up(app: ActivityApplication, view: ActivityReadModel, batch_size: int = 500) -> None:
    follower(app, view, batch_size=batch_size).catch_up()


# -- listing ------------------------------------------------------------------------------


def test_activities_carry_their_current_state(sales: Sales, view: ActivityReadModel) -> None:
    h = make_history(sales)
    caught_up(sales.app, view)

    rows, cursor = view.list_activities()
    assert cursor is None
    by_id = {r.activity_id: r for r in rows}
    assert set(by_id) == {h.a1, h.a2, h.a3, h.a4, h.a5, h.r1}

    a1 = by_id[h.a1]
    assert (a1.type, a1.status, a1.starts_at, a1.move_count) == (
        "sales_meeting",
        "planned",
        at(5),
        2,
    )
    assert a1.version == sales.app.activity(h.a1).version == 4
    a3 = by_id[h.a3]
    assert (a3.owner, a3.status, a3.starts_at, a3.closed_at) == (
        ANNA.user_id,
        "cancelled",
        at(6),
        T0,
    )
    r1 = by_id[h.r1]
    assert (r1.registered, r1.status, r1.starts_at, r1.ends_at) == (
        True,
        "completed",
        T0 - timedelta(hours=1),
        T0 - timedelta(hours=1),
    )
    assert by_id[h.a2].status == "completed"
    assert by_id[h.a2].version == 3  # planned, attachment, completed
    # ordered by start time
    assert [r.activity_id for r in rows] == [h.r1, h.a2, h.a1, h.a3, h.a5, h.a4]


def test_filters_combine(sales: Sales, view: ActivityReadModel) -> None:
    h = make_history(sales)
    caught_up(sales.app, view)

    def ids(**filters: Any) -> list[UUID]:
        rows, _ = view.list_activities(**filters)
        return [r.activity_id for r in rows]

    assert ids(owner=BO.user_id) == [h.a5]
    assert ids(owner=ANNA.user_id) == [h.r1, h.a2, h.a1, h.a3, h.a4]
    assert ids(customer_id="K3") == [h.a3, h.a5]
    assert ids(status="planned") == [h.a1, h.a5, h.a4]
    assert ids(type="sales_meeting") == [h.a1, h.a3]
    assert ids(owner=ANNA.user_id, status="planned") == [h.a1, h.a4]
    assert ids(starts_from=at(5), starts_to=at(10)) == [h.a1, h.a3]  # to is exclusive
    assert ids(starts_from=at(5), starts_to=at(10, 10)) == [h.a1, h.a3, h.a5]
    assert ids(customer_id="K9") == []


def test_paging_walks_every_row_once(sales: Sales, view: ActivityReadModel) -> None:
    # Several activities at the same start time, so the id must break the ties.
    planned = [sales.plan("K1", at(1 + i // 3)) for i in range(10)]
    planned.append(sales.plan("K2", at(2), owner=BO.user_id))
    caught_up(sales.app, view)

    seen: list[UUID] = []
    pages = 0
    cursor: str | None = None
    while True:
        rows, cursor = view.list_activities(owner=ANNA.user_id, cursor=cursor, limit=4)
        pages += 1
        seen += [r.activity_id for r in rows]
        assert all(r.owner == ANNA.user_id for r in rows)
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 10
    assert set(seen) == set(planned[:10])
    everything, _ = view.list_activities(owner=ANNA.user_id, limit=100)
    assert [r.activity_id for r in everything] == seen

    with pytest.raises(InvalidCursor):
        view.list_activities(cursor="not-a-cursor")
    with pytest.raises(InvalidCursor):
        view.list_activities(cursor="WzFd")  # base64 of [1]: valid JSON, wrong shape


def test_overdue_after_time_passes(
    sales: Sales, view: ActivityReadModel, clock: ManualClock
) -> None:
    h = make_history(sales)
    caught_up(sales.app, view)
    assert view.overdue(clock())[0] == []

    clock.advance(days=7)  # a1 (day 5) passed, a5 (day 10) and a4 (day 30) not yet
    assert [r.activity_id for r in view.overdue(clock())[0]] == [h.a1]
    assert view.overdue(clock(), owner=BO.user_id)[0] == []

    clock.advance(days=4)
    assert [r.activity_id for r in view.overdue(clock())[0]] == [h.a1, h.a5]
    assert [r.activity_id for r in view.overdue(clock(), owner=BO.user_id)[0]] == [h.a5]
    first, cursor = view.overdue(clock(), limit=1)
    assert [r.activity_id for r in first] == [h.a1]
    assert [r.activity_id for r in view.overdue(clock(), cursor=cursor)[0]] == [h.a5]


# -- timeline -----------------------------------------------------------------------------


def test_timeline_is_newest_first_with_danish_summaries(
    sales: Sales, view: ActivityReadModel
) -> None:
    h = make_history(sales)
    caught_up(sales.app, view)

    entries, cursor = view.timeline("K2")
    assert cursor is None
    assert [(e.activity_id, e.version, e.event) for e in entries] == [
        (h.a4, 1, "planned"),
        (h.a2, 3, "completed"),
        (h.a2, 2, "attachment_added"),
        (h.a2, 1, "planned"),
    ]
    assert [e.summary for e in entries] == [
        "Statusmøde planlagt 01.04.2026 kl. 14:00: Opfølgning",  # summer time by then
        "Statusmøde gennemført 02.03.2026 kl. 09:00. Næste skridt: Send tilbud på online-pakke",
        "Bilag tilføjet til statusmøde: referat.eml",
        "Statusmøde planlagt 04.03.2026 kl. 11:00: Status på kampagne",
    ]
    assert {e.actor for e in entries} == {ANNA.user_id}
    assert all(e.at == T0 and e.customer_id == "K2" for e in entries)

    k3 = [(e.event, e.type, e.summary) for e in view.timeline("K3")[0]]
    assert k3 == [
        (
            "cancelled",
            "sales_meeting",
            "Aftalt salgsmøde aflyst: Kunden har lukket butikken i marts",
        ),
        ("planned", "contact", "Kontakt planlagt 12.03.2026 kl. 10:00: Forårskampagne"),
        (
            "reassigned",
            "sales_meeting",
            f"Aftalt salgsmøde overdraget fra {BO.user_id} til {ANNA.user_id}",
        ),
        (
            "moved",
            "sales_meeting",
            "Aftalt salgsmøde flyttet til 08.03.2026 kl. 10:00 (konsulentens ønske)",
        ),
        (
            "planned",
            "sales_meeting",
            "Aftalt salgsmøde planlagt 05.03.2026 kl. 10:00: Forårskampagne",
        ),
    ]
    k1 = [e.summary for e in view.timeline("K1")[0]]
    assert k1[0] == "Kontakt ændret til Aftalt salgsmøde"
    k4 = view.timeline("K4")[0]
    assert [e.summary for e in k4] == [
        f"Kontakt registreret, holdt 02.03.2026 kl. 08:00: {VALUABLE_NOTE}"
    ]

    pages: list[list[tuple[UUID, int]]] = []
    cursor = None
    while True:
        page, cursor = view.timeline("K3", cursor=cursor, limit=2)
        pages.append([(e.activity_id, e.version) for e in page])
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    walked = [key for page in pages for key in page]
    assert walked == [(e.activity_id, e.version) for e in view.timeline("K3")[0]]


# -- reports ------------------------------------------------------------------------------


def test_move_statistics_by_consultant_and_reason(
    sales: Sales, view: ActivityReadModel, clock: ManualClock
) -> None:
    h = make_history(sales)
    clock.advance(days=1)
    sales.app.move(
        ANNA, h.a4, starts_at=at(31), ends_at=None, reason=MoveReason.NO_ANSWER, note=None
    )
    caught_up(sales.app, view)

    stats = view.move_stats()
    assert stats.total == 4
    assert stats.by_reason == {"consultant": 1, "customer_request": 1, "no_answer": 2}
    anna, bo = stats.owners
    # The move of a3 counts for Bo, who owned it then; the activity is Anna's now.
    assert (anna.owner, anna.moves, anna.by_reason) == (
        ANNA.user_id,
        3,
        {"customer_request": 1, "no_answer": 2},
    )
    assert (bo.owner, bo.moves, bo.by_reason) == (BO.user_id, 1, {"consultant": 1})
    # Anna owns a1, a2, a3 and a4 as planned activities: a1, a3 and a4 were moved.
    assert (anna.planned, anna.moved, anna.moved_share) == (4, 3, 0.75)
    assert (bo.planned, bo.moved, bo.moved_share) == (1, 0, 0.0)

    day_two = view.move_stats(moved_from=at(1, 0), moved_to=at(2, 0))
    assert day_two.total == 1
    assert day_two.by_reason == {"no_answer": 1}
    assert [(o.owner, o.moves, o.planned) for o in day_two.owners] == [(ANNA.user_id, 1, 0)]
    assert view.move_stats(moved_to=T0).total == 0


# -- rebuild and tracking -----------------------------------------------------------------


def test_a_rebuild_from_zero_equals_the_live_model(
    env: dict[str, str],
    sales: Sales,
    view: ActivityReadModel,
    clock: ManualClock,
) -> None:
    live = follower(sales.app, view, batch_size=3)  # small batches: rows continue across them
    a = sales.plan("K1", at(1))
    live.catch_up()
    h = make_history(sales)
    live.catch_up()
    clock.advance(hours=1)
    sales.app.move(ANNA, a, starts_at=at(2), ends_at=None, reason=MoveReason.OTHER, note=None)
    sales.app.reassign(MIA, h.a5, owner=ANNA.user_id)
    live.catch_up()
    sales.app.complete(ANNA, a, CompletionRequest(note=VALUABLE_NOTE, next_step="Ring i næste uge"))
    assert live.catch_up() == 1
    assert live.catch_up() == 0

    rebuilt = rebuild(env, app=sales.app)
    try:
        assert rebuilt.name == REBUILD_NAME
        assert compare(view, rebuilt) == []
        assert rebuilt.dump() == view.dump()
        assert sum(len(rows) for rows in view.dump().values()) > 20

        # Rebuilding again starts from zero, not from where the last rebuild stopped.
        sales.app.cancel(ANNA, h.a1, reason="Kunden har fundet et andet medie")
        differences = compare(view, rebuilt)
        assert differences == []  # neither has read the cancellation yet
        again = rebuild(env)
        try:
            assert compare(view, again)[0].startswith("positions differ")
            live.catch_up()
            assert compare(view, again) == []
        finally:
            again.close()
    finally:
        rebuilt.close()


def test_rebuild_in_place_refills_the_live_model(
    env: dict[str, str], sales: Sales, view: ActivityReadModel
) -> None:
    make_history(sales)
    caught_up(sales.app, view)
    before = view.dump()
    with view.transaction() as tx:
        tx.execute("DELETE FROM {t}timeline")  # damage it
    assert view.dump() != before
    refilled = rebuild(env, in_place=True, app=sales.app)
    try:
        assert refilled.name == view.name
        assert view.dump() == before
    finally:
        refilled.close()


def test_a_batch_is_applied_once(sales: Sales, view: ActivityReadModel) -> None:
    make_history(sales)
    app = sales.app
    notifications = app.recorder.select_notifications(
        start=0, limit=1000, topics=ACTIVITY_TOPICS, inclusive_of_start=False
    )
    batch = [(n, app.mapper.to_domain_event(n)) for n in notifications]
    # Someone else's follower stood at 0 when it started, then another instance caught up.
    late = follower(app, view)
    assert late.position == 0

    def apply_all() -> None:
        with view.transaction() as tx:
            view.apply(tx, batch)
            tx.track(app.name, notifications[-1].id)

    apply_all()
    once = view.dump()
    assert len(once["timeline"]) == len(batch)
    with pytest.raises(IntegrityError):
        apply_all()
    assert view.dump() == once

    assert late.step() == 0  # refused by tracking, no second effect
    assert view.dump() == once
    assert late.position == notifications[-1].id


def test_only_activity_events_are_read(sales: Sales, view: ActivityReadModel) -> None:
    make_history(sales)
    everything = sales.app.recorder.select_notifications(start=0, limit=1000)
    others = {n.topic for n in everything} - set(ACTIVITY_TOPICS)
    assert any("CustomerFile" in t for t in others)
    read = follower(sales.app, view).catch_up()
    assert read == sum(1 for n in everything if n.topic in ACTIVITY_TOPICS) < len(everything)
