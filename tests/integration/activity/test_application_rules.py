"""Rules R1–R10 through the activity Application, on SQLite and on PostgreSQL.

Every refusal is checked to leave the store untouched: the log's max notification id is the
same before and after.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from activity.application import (
    ActivityApplication,
    AttachmentRequest,
    NotFound,
    PlanRequest,
    RegistrationRequest,
)
from activity.domain import CANCELLED, COMPLETED, PLANNED, Activity, CustomerFile
from activity.rules import DISCOVERY_FIELDS, DomainError
from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason, Segment

from tests.support.clock import ManualClock
from tests.support.people import ANNA, MIA

CUSTOMER, NAME = "c-100", "Bager Hansen ApS"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
VALUABLE = "Kunden åbner ny butik i Køge til maj, vil have tilbud på print"
PROFILE: dict[str, Any] = {
    "business": "Bageri med tre butikker",
    "situation": "Annoncerer kun på Facebook",
    "challenges": "Få kunder om eftermiddagen",
    "goals_and_plans": "Ny butik i Køge i maj",
    "advertising_needs": "Lokal synlighed før åbningen",
    "potential_dkk": "150000",
    "competitors": "Lagkagehuset",
    "strategy": "Kvalitet frem for pris",
    "unique_traits": "Surdej fra egen mølle",
}
PROPOSAL = AttachmentRequest(
    kind=AttachmentKind.PROPOSAL,
    filename="oplaeg-2026.pdf",
    media_type="application/pdf",
    size=48_213,
    sha256="a" * 64,
    uri="blob://attachments/oplaeg-2026.pdf",
)
AGREEMENT = AttachmentRequest(
    kind=AttachmentKind.AGREEMENT,
    filename="aftale.pdf",
    media_type="application/pdf",
    size=1_000,
    sha256="b" * 64,
    uri="blob://attachments/aftale.pdf",
)


# --------------------------------------------------------------------------- helpers


def request(
    clock: ManualClock,
    *,
    in_: timedelta = DAY,
    type_: ActivityType = ActivityType.CONTACT,
    channel: Channel = Channel.PHONE,
    subject: str = "Forårskampagne",
    customer_id: str = CUSTOMER,
    owner: str = ANNA.user_id,
) -> PlanRequest:
    starts = clock.now + in_
    return PlanRequest(
        customer_id=customer_id,
        owner=owner,
        type=type_,
        channel=channel,
        subject=subject,
        starts_at=starts,
        ends_at=starts + HOUR,
        agenda="1. Status 2. Næste kampagne",
    )


def plan(app: ActivityApplication, clock: ManualClock, **kwargs: Any) -> Activity:
    return app.plan(ANNA, request(clock, **kwargs)).activity


def register(app: ActivityApplication, clock: ManualClock, **overrides: Any) -> Activity:
    arguments: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "owner": ANNA.user_id,
        "type": ActivityType.CONTACT,
        "channel": Channel.PHONE,
        "occurred_at": clock.now - HOUR,
        "note": VALUABLE,
    }
    arguments.update(overrides)
    return app.register(ANNA, RegistrationRequest(**arguments)).activity


def complete(app: ActivityApplication, activity_id: UUID, **overrides: Any) -> Activity:
    arguments: dict[str, Any] = {
        "note": "Kunden vil have 4 ugers print før åbningen",
        "next_step": "Send tilbud senest fredag",
    }
    arguments.update(overrides)
    return app.complete(ANNA, activity_id, **arguments).activity


def refused(
    app: ActivityApplication, command: Callable[[], object], error: type[Exception] = DomainError
) -> Any:
    """Run a command that must be refused with `error`; check nothing was stored."""
    before = app.recorder.max_notification_id()
    with pytest.raises(error) as raised:
        command()
    assert app.recorder.max_notification_id() == before, "a refused command stored events"
    return raised.value


def kinds(app: ActivityApplication, activity_id: UUID) -> list[str]:
    return [type(e).__name__ for e in app.history(activity_id)]


@pytest.fixture
def customer(add_customer: Callable[..., Any]) -> str:
    add_customer(CUSTOMER, NAME, Segment.C)
    return CUSTOMER


@pytest.fixture
def prioritized(add_customer: Callable[..., Any]) -> str:
    add_customer(CUSTOMER, NAME, Segment.A)
    return CUSTOMER


# --------------------------------------------------------------------------- customers


def test_an_unknown_customer_is_refused(app: ActivityApplication, clock: ManualClock) -> None:
    error = refused(app, lambda: plan(app, clock, customer_id="nobody"))
    assert error.code == "unknown_customer"
    assert error.details == {"field": "customer_id"}
    error = refused(app, lambda: register(app, clock, customer_id="nobody"))
    assert error.code == "unknown_customer"


def test_an_unknown_activity_is_not_found(app: ActivityApplication, customer: str) -> None:
    refused(app, lambda: app.activity(uuid.uuid4()), NotFound)
    refused(app, lambda: app.history(uuid.uuid4()), NotFound)
    refused(
        app,
        lambda: app.move(
            ANNA,
            uuid.uuid4(),
            starts_at=datetime(2030, 1, 1).astimezone(),
            ends_at=None,
            reason=MoveReason.OTHER,
            note=None,
        ),
        NotFound,
    )


def test_other_aggregates_are_not_activities(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    plan(app, clock)
    file_id = CustomerFile.id_for(customer)
    assert app.repository.get(file_id).customer_id == customer
    with pytest.raises(NotFound):
        app.activity(file_id)
    with pytest.raises(NotFound):
        app.history(file_id)
    with pytest.raises(NotFound):
        app.activity(file_id, as_of=clock.now)


# --------------------------------------------------------------------------- R5 planning


def test_R5_planning_stores_a_planned_activity(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    outcome = app.plan(ANNA, request(clock, type_=ActivityType.SALES_MEETING))

    assert (outcome.status, outcome.replayed) == (201, False)
    stored = app.activity(outcome.activity.id)
    assert (stored.status, stored.version, stored.type, stored.channel, stored.subject) == (
        PLANNED,
        1,
        "sales_meeting",
        "phone",
        "Forårskampagne",
    )
    assert stored.agenda == "1. Status 2. Næste kampagne"
    assert stored.starts_at == clock.now + DAY
    [event] = app.history(stored.id)
    assert (type(event).__name__, event.actor) == ("Planned", ANNA.user_id)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"subject": "  "}, "R5"),
        ({"in_": timedelta(0)}, "starts_at"),
        ({"in_": -HOUR}, "starts_at"),
        ({"type_": ActivityType.UNANNOUNCED_VISIT, "channel": Channel.PHONE}, "R3"),
    ],
)
def test_R5_planning_refusals_store_nothing(
    app: ActivityApplication, clock: ManualClock, customer: str, change: dict[str, Any], code: str
) -> None:
    error = refused(app, lambda: plan(app, clock, **change))
    assert error.code == code


def test_R5_a_planned_activity_ends_after_it_starts(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    good = request(clock)
    bad = replace(good, ends_at=good.starts_at)
    error = refused(app, lambda: app.plan(ANNA, bad))
    assert error.code == "ends_at"


# --------------------------------------------------------------------------- R1 move


def test_R1_a_move_keeps_every_earlier_time_and_does_not_complete(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock)
    first_time = activity.starts_at
    second_time, third_time = first_time + DAY, first_time + 2 * DAY

    app.move(
        ANNA,
        activity.id,
        starts_at=second_time,
        ends_at=None,
        reason=MoveReason.NO_ANSWER,
        note=None,
    )
    clock.advance(hours=2)
    outcome = app.move(
        ANNA,
        activity.id,
        starts_at=third_time,
        ends_at=third_time + timedelta(minutes=30),
        reason=MoveReason.CUSTOMER_REQUEST,
        note="Kunden er på ferie",
    )

    assert outcome.status == 200
    stored = app.activity(activity.id)
    assert (stored.status, stored.version) == (PLANNED, 3)
    assert (stored.starts_at, stored.ends_at) == (third_time, third_time + timedelta(minutes=30))
    history = app.history(activity.id)
    assert [type(e).__name__ for e in history] == ["Planned", "Moved", "Moved"]
    assert [e.starts_at for e in history] == [first_time, second_time, third_time]
    assert [e.reason for e in history[1:]] == ["no_answer", "customer_request"]
    assert history[2].note == "Kunden er på ferie"
    assert app.repository.get(CustomerFile.id_for(customer)).open_activities == {
        activity.id: third_time
    }


def test_R1_a_move_needs_a_future_time_by_the_injected_clock(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock, in_=3 * DAY)
    target = clock.now + DAY
    clock.advance(days=2)  # target is now in the past

    error = refused(
        app,
        lambda: app.move(
            ANNA,
            activity.id,
            starts_at=target,
            ends_at=None,
            reason=MoveReason.NO_ANSWER,
            note=None,
        ),
    )
    assert error.code == "R1"
    error = refused(
        app,
        lambda: app.move(
            ANNA,
            activity.id,
            starts_at=clock.now,
            ends_at=None,
            reason=MoveReason.NO_ANSWER,
            note=None,
        ),
    )
    assert error.code == "R1"
    assert kinds(app, activity.id) == ["Planned"]


def test_R1_a_move_needs_a_reason(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock)
    error = refused(
        app,
        lambda: app.move(
            ANNA,
            activity.id,
            starts_at=activity.starts_at + DAY,
            ends_at=None,
            reason=None,  # type: ignore[arg-type]
            note="Ingen svar",
        ),
    )
    assert (error.code, error.details) == ("R1", {"field": "reason"})


def test_R1_an_overdue_activity_may_be_moved_into_the_future(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock, in_=HOUR)
    clock.advance(hours=3)
    app.move(
        ANNA,
        activity.id,
        starts_at=clock.now + DAY,
        ends_at=None,
        reason=MoveReason.NO_ANSWER,
        note=None,
    )
    assert app.activity(activity.id).starts_at == clock.now + DAY


# --------------------------------------------------------------------------- R2 retype


def test_R2_a_retype_keeps_the_old_type_in_the_history(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock, type_=ActivityType.CONTACT, channel=Channel.PHONE)

    app.retype(
        ANNA,
        activity.id,
        type_=ActivityType.SALES_MEETING,
        channel=Channel.PHYSICAL,
        reason="Kunden ville hellere mødes",
    )

    stored = app.activity(activity.id)
    assert (stored.type, stored.channel, stored.status) == ("sales_meeting", "physical", PLANNED)
    assert [(type(e).__name__, e.type, e.channel) for e in app.history(activity.id)] == [
        ("Planned", "contact", "phone"),
        ("Retyped", "sales_meeting", "physical"),
    ]


def test_R2_a_retype_to_the_same_type_and_channel_is_refused(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock)
    error = refused(
        app,
        lambda: app.retype(
            ANNA, activity.id, type_=ActivityType.CONTACT, channel=None, reason=None
        ),
    )
    assert error.code == "R2"


# --------------------------------------------------------------------------- R3/R4 registration


@pytest.mark.parametrize(
    "type_",
    [
        ActivityType.SALES_MEETING,
        ActivityType.STATUS_MEETING,
        ActivityType.PROPOSAL_MEETING,
        ActivityType.DISCOVERY_MEETING,
        ActivityType.CONTACT,
    ],
)
def test_R3_an_unplanned_physical_meeting_must_be_an_unannounced_visit(
    app: ActivityApplication, clock: ManualClock, customer: str, type_: ActivityType
) -> None:
    error = refused(
        app,
        lambda: register(
            app,
            clock,
            type=type_,
            channel=Channel.PHYSICAL,
            discovery_profile=PROFILE,
        ),
    )
    assert error.code == "R3"
    assert "unannounced_visit" in error.message


def test_R3_R4_an_unannounced_visit_is_registered_completed_whatever_its_note(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = register(
        app, clock, type=ActivityType.UNANNOUNCED_VISIT, channel=Channel.PHYSICAL, note="ok"
    )
    stored = app.activity(activity.id)
    assert (stored.status, stored.type, stored.channel, stored.note) == (
        COMPLETED,
        "unannounced_visit",
        "physical",
        "ok",
    )
    assert stored.completed_at == clock.now - HOUR
    [event] = app.history(activity.id)
    assert (type(event).__name__, event.actor) == ("Registered", ANNA.user_id)


@pytest.mark.parametrize(
    "note",
    [
        "Ringede, ingen svar",
        "ok",
        "Ringede. Ingen svar. Lagt besked. Ringer igen. Mail sendt. Ok. Intet nyt. " * 3,
        "abcde fghij, klmno - pqrs",  # 19 letters of substance
        "æøå æøå æøå æøå æøå æø",  # 17 Danish letters
    ],
    ids=["stock", "ok", "long-stock-only", "19-chars", "17-danish"],
)
def test_R4_an_unplanned_contact_without_a_valuable_note_is_refused(
    app: ActivityApplication, clock: ManualClock, customer: str, note: str
) -> None:
    error = refused(app, lambda: register(app, clock, note=note))
    assert (error.code, error.details) == ("R4", {"field": "note"})


@pytest.mark.parametrize(
    "note",
    [
        VALUABLE,
        "abcde fghij, klmno - pqrst",  # exactly 20 letters of substance
        "Ringede: æøå æøå æøå æøå æøå æøå æø",  # 20 Danish letters besides a stock phrase
    ],
    ids=["valuable", "20-chars", "20-danish"],
)
def test_R4_an_unplanned_contact_with_a_valuable_note_is_registered(
    app: ActivityApplication, clock: ManualClock, customer: str, note: str
) -> None:
    activity = register(app, clock, note=note)
    assert app.activity(activity.id).status == COMPLETED


def test_R4_a_registration_cannot_be_in_the_future(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    error = refused(app, lambda: register(app, clock, occurred_at=clock.now + HOUR))
    assert error.code == "held_at"


# --------------------------------------------------------------------------- R6 completion


def test_R6_completion_stores_the_note_and_the_next_step(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock)
    clock.advance(days=1, hours=1)

    outcome = app.complete(
        ANNA,
        activity.id,
        note="Kunden vil have 4 ugers print",
        next_step="Send tilbud fredag",
        attachments=[AGREEMENT],
    )

    stored = app.activity(activity.id)
    assert outcome.activity.version == stored.version == 3
    assert (stored.status, stored.note, stored.next_step, stored.completed_at) == (
        COMPLETED,
        "Kunden vil have 4 ugers print",
        "Send tilbud fredag",
        clock.now,
    )
    assert kinds(app, activity.id) == ["Planned", "AttachmentAdded", "Completed"]
    assert app.repository.get(CustomerFile.id_for(customer)).open_activities == {}


@pytest.mark.parametrize(
    ("note", "next_step"), [("", "Send tilbud"), ("  ", "Send tilbud"), ("Vil have print", " ")]
)
def test_R6_completion_needs_a_note_and_a_next_step(
    app: ActivityApplication, clock: ManualClock, customer: str, note: str, next_step: str
) -> None:
    activity = plan(app, clock)
    error = refused(
        app,
        lambda: complete(app, activity.id, note=note, next_step=next_step, attachments=[AGREEMENT]),
    )
    assert error.code == "R6"
    assert app.activity(activity.id).status == PLANNED


# --------------------------------------------------------------------------- R7 workflow


def test_R7_completion_plans_the_next_activity_in_the_same_transaction(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock)
    follow_up = request(
        clock, in_=14 * DAY, type_=ActivityType.PROPOSAL_MEETING, channel=Channel.PHYSICAL
    )
    before = app.recorder.max_notification_id()

    done = complete(app, activity.id, next_activity=follow_up)

    assert done.next_activity_id is not None
    following = app.activity(done.next_activity_id)
    assert (following.status, following.type, following.customer_id, following.starts_at) == (
        PLANNED,
        "proposal_meeting",
        customer,
        follow_up.starts_at,
    )
    assert app.history(following.id)[0].actor == ANNA.user_id
    file = app.repository.get(CustomerFile.id_for(customer))
    assert file.open_activities == {following.id: follow_up.starts_at}
    # one transaction: completion, follow-up and the customer's file (close + schedule)
    notifications = app.recorder.select_notifications(start=(before or 0) + 1, limit=100)
    assert sorted(n.topic.rsplit(".", 1)[-1] for n in notifications) == [
        "ActivityClosed",
        "ActivityScheduled",
        "Completed",
        "Planned",
    ]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"in_": -HOUR}, "starts_at"),
        ({"subject": ""}, "R5"),
        ({"customer_id": "c-other"}, "R7"),
        ({"type_": ActivityType.UNANNOUNCED_VISIT, "channel": Channel.VIDEO}, "R3"),
    ],
)
def test_R7_an_invalid_next_activity_saves_neither_it_nor_the_completion(
    app: ActivityApplication,
    clock: ManualClock,
    add_customer: Callable[..., Any],
    change: dict[str, Any],
    code: str,
) -> None:
    add_customer(CUSTOMER, NAME, Segment.A)
    add_customer("c-other", "Slagter Jensen", Segment.A)
    activity = plan(app, clock)

    error = refused(
        app,
        lambda: complete(
            app, activity.id, attachments=[AGREEMENT], next_activity=request(clock, **change)
        ),
    )

    assert error.code == code
    assert app.activity(activity.id).status == PLANNED
    assert kinds(app, activity.id) == ["Planned"]


def test_R7_a_registration_may_plan_the_next_activity(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    follow_up = request(clock, in_=7 * DAY, type_=ActivityType.SALES_MEETING)
    activity = register(app, clock, next_step="Book salgsmøde", next_activity=follow_up)

    assert activity.next_activity_id is not None
    assert app.activity(activity.next_activity_id).status == PLANNED
    assert app.repository.get(CustomerFile.id_for(customer)).open_activities == {
        activity.next_activity_id: follow_up.starts_at
    }


def test_R7_an_invalid_next_activity_refuses_the_registration(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    error = refused(app, lambda: register(app, clock, next_activity=request(clock, in_=-DAY)))
    assert error.code == "starts_at"


# --------------------------------------------------------------------------- R8 prioritized


@pytest.mark.parametrize("segment", [Segment.ANNUAL_AGREEMENT, Segment.A, Segment.B])
def test_R8_completing_the_last_future_activity_of_a_prioritized_customer_is_refused(
    app: ActivityApplication,
    clock: ManualClock,
    add_customer: Callable[..., Any],
    segment: Segment,
) -> None:
    add_customer(CUSTOMER, NAME, segment)
    activity = plan(app, clock)

    error = refused(app, lambda: complete(app, activity.id, attachments=[AGREEMENT]))

    assert (error.code, error.kind) == ("R8", "conflict")
    assert f"(segment {segment.label})" in str(error)  # consultants know "Årsaftale"
    assert error.details == {
        "customer_id": CUSTOMER,
        "customer_name": NAME,
        "segment": segment.value,
    }
    assert NAME in error.message
    assert app.activity(activity.id).status == PLANNED


def test_R8_cancelling_the_last_future_activity_of_a_prioritized_customer_is_refused(
    app: ActivityApplication, clock: ManualClock, prioritized: str
) -> None:
    activity = plan(app, clock)
    error = refused(app, lambda: app.cancel(ANNA, activity.id, reason="Dobbeltbooket"))
    assert (error.code, error.kind) == ("R8", "conflict")
    assert error.details["customer_id"] == prioritized
    assert app.activity(activity.id).status == PLANNED


def test_R8_another_future_activity_allows_completing_and_cancelling(
    app: ActivityApplication, clock: ManualClock, prioritized: str
) -> None:
    first, second, third = (plan(app, clock, in_=n * DAY) for n in (1, 2, 3))

    complete(app, first.id)
    app.cancel(ANNA, second.id, reason="Dobbeltbooket")

    assert app.activity(first.id).status == COMPLETED
    assert app.activity(second.id).status == CANCELLED
    error = refused(app, lambda: app.cancel(ANNA, third.id, reason="Kunden aflyste"))
    assert error.code == "R8"


def test_R8_a_next_activity_allows_completing_the_last_one(
    app: ActivityApplication, clock: ManualClock, prioritized: str
) -> None:
    activity = plan(app, clock)
    done = complete(app, activity.id, next_activity=request(clock, in_=30 * DAY))
    assert app.activity(activity.id).status == COMPLETED
    assert app.activity(done.next_activity_id).status == PLANNED


@pytest.mark.parametrize("segment", [Segment.C, Segment.D, Segment.UNSEGMENTED])
def test_R8_does_not_apply_to_customers_that_are_not_prioritized(
    app: ActivityApplication,
    clock: ManualClock,
    add_customer: Callable[..., Any],
    segment: Segment,
) -> None:
    add_customer(CUSTOMER, NAME, segment)
    first, second = plan(app, clock), plan(app, clock, in_=2 * DAY)
    complete(app, first.id)
    app.cancel(ANNA, second.id, reason="Kunden aflyste")
    assert app.activity(first.id).status == COMPLETED
    assert app.activity(second.id).status == CANCELLED


def test_R8_an_overdue_activity_is_not_a_future_activity(
    app: ActivityApplication, clock: ManualClock, prioritized: str
) -> None:
    overdue = plan(app, clock, in_=HOUR)
    later = plan(app, clock, in_=3 * HOUR)
    clock.advance(hours=2)  # `overdue` started an hour ago; `later` starts in an hour

    error = refused(app, lambda: complete(app, later.id))  # only an overdue one would be left
    assert error.code == "R8"

    complete(app, overdue.id)  # `later` is still in the future
    assert app.activity(overdue.id).status == COMPLETED


def test_R8_follows_the_customer_when_it_becomes_prioritized(
    app: ActivityApplication, clock: ManualClock, add_customer: Callable[..., Any]
) -> None:
    add_customer(CUSTOMER, NAME, Segment.C)
    activity = plan(app, clock)
    add_customer(CUSTOMER, NAME, Segment.B)  # segmentation promoted the customer
    assert refused(app, lambda: app.cancel(ANNA, activity.id, reason="Aflyst")).code == "R8"


# --------------------------------------------------------------------------- R9 proposal


def test_R9_a_proposal_meeting_is_not_completed_without_its_proposal(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock, type_=ActivityType.PROPOSAL_MEETING, channel=Channel.PHYSICAL)

    error = refused(app, lambda: complete(app, activity.id, attachments=[AGREEMENT]))

    assert (error.code, error.kind) == ("R9", "conflict")
    assert kinds(app, activity.id) == ["Planned"]  # not even the agreement was kept


def test_R9_the_proposal_may_come_with_the_completion(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock, type_=ActivityType.PROPOSAL_MEETING, channel=Channel.PHYSICAL)
    complete(app, activity.id, attachments=[PROPOSAL])
    stored = app.activity(activity.id)
    assert stored.status == COMPLETED
    assert [a["kind"] for a in stored.attachments] == ["proposal"]
    assert kinds(app, activity.id) == ["Planned", "AttachmentAdded", "Completed"]


def test_R9_the_proposal_may_be_attached_earlier(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock, type_=ActivityType.PROPOSAL_MEETING, channel=Channel.VIDEO)
    outcome = app.add_attachment(ANNA, activity.id, PROPOSAL)
    assert (outcome.status, outcome.activity.version) == (201, 2)
    complete(app, activity.id)
    assert app.activity(activity.id).status == COMPLETED


def test_R9_a_registered_proposal_meeting_needs_its_proposal(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    error = refused(
        app,
        lambda: register(app, clock, type=ActivityType.PROPOSAL_MEETING, channel=Channel.VIDEO),
    )
    assert error.code == "R9"
    activity = register(
        app,
        clock,
        type=ActivityType.PROPOSAL_MEETING,
        channel=Channel.VIDEO,
        attachments=[PROPOSAL],
    )
    stored = app.activity(activity.id)
    assert (stored.status, [a["kind"] for a in stored.attachments]) == (COMPLETED, ["proposal"])


# --------------------------------------------------------------------------- R10 discovery


def test_R10_a_discovery_meeting_is_not_completed_without_the_full_profile(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock, type_=ActivityType.DISCOVERY_MEETING, channel=Channel.PHYSICAL)

    error = refused(app, lambda: complete(app, activity.id))
    assert (error.code, error.details["missing"]) == ("R10", list(DISCOVERY_FIELDS))

    partial = {**PROFILE, "competitors": " "}
    del partial["unique_traits"]
    error = refused(app, lambda: complete(app, activity.id, discovery_profile=partial))
    assert error.code == "R10"
    assert error.details["missing"] == ["competitors", "unique_traits"]
    assert "competitors, unique_traits" in error.message
    refused(app, lambda: app.discovery_profile(customer), NotFound)


def test_R10_the_profile_is_kept_per_customer_with_its_history(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    first = plan(app, clock, type_=ActivityType.DISCOVERY_MEETING, channel=Channel.PHYSICAL)
    second = plan(
        app, clock, in_=30 * DAY, type_=ActivityType.DISCOVERY_MEETING, channel=Channel.VIDEO
    )
    before_any = clock.now
    clock.advance(days=1, hours=1)
    complete(app, first.id, discovery_profile=PROFILE)
    first_recorded = clock.now
    clock.advance(days=30)
    updated = {**PROFILE, "potential_dkk": "420000", "strategy": "Vækst i Roskilde"}
    complete(app, second.id, discovery_profile=updated)

    profile, revision, event = app.discovery_profile(customer)
    assert (profile["potential_dkk"], profile["strategy"], revision) == (
        "420000",
        "Vækst i Roskilde",
        2,
    )
    assert (event.activity_id, event.actor) == (second.id, ANNA.user_id)

    profile, revision, event = app.discovery_profile(customer, as_of=first_recorded + DAY)
    assert profile == PROFILE
    assert (revision, event.activity_id) == (1, first.id)
    refused(app, lambda: app.discovery_profile(customer, as_of=before_any), NotFound)


def test_R10_a_registered_discovery_meeting_records_the_profile(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    error = refused(
        app,
        lambda: register(app, clock, type=ActivityType.DISCOVERY_MEETING, channel=Channel.VIDEO),
    )
    assert error.code == "R10"
    activity = register(
        app,
        clock,
        type=ActivityType.DISCOVERY_MEETING,
        channel=Channel.VIDEO,
        discovery_profile=PROFILE,
    )
    profile, revision, event = app.discovery_profile(customer)
    assert (profile, revision, event.activity_id) == (PROFILE, 1, activity.id)


# --------------------------------------------------------------------------- state machine


def _completed(app: ActivityApplication, clock: ManualClock) -> Activity:
    activity = plan(app, clock)
    complete(app, activity.id)
    return app.activity(activity.id)


def _cancelled(app: ActivityApplication, clock: ManualClock) -> Activity:
    activity = plan(app, clock)
    app.cancel(ANNA, activity.id, reason="Kunden aflyste")
    return app.activity(activity.id)


def _registered(app: ActivityApplication, clock: ManualClock) -> Activity:
    return register(app, clock)


COMMANDS: dict[str, Callable[[ActivityApplication, Activity], object]] = {
    "move": lambda app, a: app.move(
        ANNA,
        a.id,
        starts_at=a.starts_at + 5 * DAY,
        ends_at=None,
        reason=MoveReason.OTHER,
        note=None,
    ),
    "retype": lambda app, a: app.retype(
        ANNA, a.id, type_=ActivityType.SALES_MEETING, channel=Channel.VIDEO, reason=None
    ),
    "reassign": lambda app, a: app.reassign(MIA, a.id, owner="bo@example.dk"),
    "complete": lambda app, a: complete(app, a.id),
    "cancel": lambda app, a: app.cancel(ANNA, a.id, reason="Igen"),
}


@pytest.mark.parametrize("final", [_completed, _cancelled, _registered])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_completed_and_cancelled_activities_are_final(
    app: ActivityApplication,
    clock: ManualClock,
    customer: str,
    final: Callable[[ActivityApplication, ManualClock], Activity],
    command: str,
) -> None:
    activity = final(app, clock)
    error = refused(app, lambda: COMMANDS[command](app, activity))
    assert (error.code, error.kind) == ("invalid_transition", "conflict")
    assert app.activity(activity.id).status == activity.status


def test_a_cancelled_activity_takes_no_attachment_a_completed_one_does(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    cancelled = _cancelled(app, clock)
    error = refused(app, lambda: app.add_attachment(ANNA, cancelled.id, AGREEMENT))
    assert error.code == "invalid_transition"
    completed = _completed(app, clock)
    app.add_attachment(ANNA, completed.id, AGREEMENT)
    assert kinds(app, completed.id) == ["Planned", "Completed", "AttachmentAdded"]


def test_cancelling_closes_the_activity_in_the_customer_file(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock)
    refused(app, lambda: app.cancel(ANNA, activity.id, reason=" "))
    app.cancel(ANNA, activity.id, reason="Kunden aflyste")
    assert app.activity(activity.id).status == CANCELLED
    assert app.repository.get(CustomerFile.id_for(customer)).open_activities == {}


# --------------------------------------------------------------------------- as_of


def test_as_of_gives_the_activity_as_it_was_then(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    planned_at = clock.now
    activity = plan(app, clock, in_=2 * DAY, type_=ActivityType.CONTACT)
    clock.advance(hours=1)
    moved_at = clock.now
    app.move(
        ANNA,
        activity.id,
        starts_at=activity.starts_at + DAY,
        ends_at=None,
        reason=MoveReason.NO_ANSWER,
        note=None,
    )
    clock.advance(hours=1)
    app.retype(ANNA, activity.id, type_=ActivityType.SALES_MEETING, channel=None, reason=None)
    clock.advance(days=4)
    complete(app, activity.id)

    then = app.activity(activity.id, as_of=planned_at + timedelta(minutes=30))
    assert (then.version, then.status, then.type, then.starts_at) == (
        1,
        PLANNED,
        "contact",
        activity.starts_at,
    )
    at_move = app.activity(activity.id, as_of=moved_at)
    assert (at_move.version, at_move.starts_at, at_move.type) == (
        2,
        activity.starts_at + DAY,
        "contact",
    )
    before_completion = app.activity(activity.id, as_of=clock.now - timedelta(seconds=1))
    assert (before_completion.version, before_completion.type, before_completion.status) == (
        3,
        "sales_meeting",
        PLANNED,
    )
    assert app.activity(activity.id, as_of=clock.now).status == COMPLETED
    with pytest.raises(NotFound):
        app.activity(activity.id, as_of=planned_at - timedelta(seconds=1))
