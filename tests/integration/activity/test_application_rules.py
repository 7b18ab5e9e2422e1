"""The guide's rules through the activity Application where they need the store, on SQLite and
on PostgreSQL: a refusal stores nothing, not even what the command had changed in memory
before a rule refused it; R7's next activity is saved in the same transaction as the command
that plans it; R8 reads the customer's file and the directory as they are stored; a customer's
discovery profile keeps its history; `as_of` reads the past from the log.

Every case of every rule is a table test in tests/unit/activity (rules, aggregate, customer
file); R8 across racing commands is in test_application_concurrency.py, and R8 across
processes in test_command_path_reads.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from activity.application import ActivityApplication, NotFound
from activity.domain import (
    CANCELLED,
    COMPLETED,
    PLANNED,
    Activity,
    AttachmentRequest,
    CompletionRequest,
    CustomerFile,
    PlanRequest,
    RegistrationRequest,
)
from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason, Segment
from crm_platform.errors import DomainError

from tests.support.clock import ManualClock
from tests.support.people import ANNA

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
) -> PlanRequest:
    starts = clock.now + in_
    return PlanRequest(
        customer_id=customer_id,
        owner=ANNA.user_id,
        type=type_,
        channel=channel,
        subject=subject,
        starts_at=starts,
        ends_at=starts + HOUR,
        agenda="1. Status 2. Næste kampagne",
    )


def plan(app: ActivityApplication, clock: ManualClock, **kwargs: Any) -> Activity:
    return app.plan(ANNA, request(clock, **kwargs)).activity


def registration(clock: ManualClock, **overrides: Any) -> RegistrationRequest:
    arguments: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "owner": ANNA.user_id,
        "type": ActivityType.CONTACT,
        "channel": Channel.PHONE,
        "held_at": clock.now - HOUR,
        "note": VALUABLE,
    }
    return RegistrationRequest(**(arguments | overrides))


def register(app: ActivityApplication, clock: ManualClock, **overrides: Any) -> Activity:
    return app.register(ANNA, registration(clock, **overrides)).activity


def completion(**overrides: Any) -> CompletionRequest:
    arguments: dict[str, Any] = {
        "note": "Kunden vil have 4 ugers print før åbningen",
        "next_step": "Send tilbud senest fredag",
    }
    return CompletionRequest(**(arguments | overrides))


def complete(app: ActivityApplication, activity_id: UUID, **overrides: Any) -> Activity:
    return app.complete(ANNA, activity_id, completion(**overrides)).activity


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


def file_of(app: ActivityApplication, customer_id: str = CUSTOMER) -> CustomerFile:
    file: CustomerFile = app.repository.get(CustomerFile.id_for(customer_id))
    return file


def saved_together(app: ActivityApplication, after: int | None) -> list[str]:
    """The event classes stored since notification `after`, as one save leaves them."""
    notifications = app.recorder.select_notifications(start=(after or 0) + 1, limit=100)
    return sorted(n.topic.rsplit(".", 1)[-1] for n in notifications)


@pytest.fixture
def customer(add_customer: Callable[..., Any]) -> str:
    add_customer(CUSTOMER, NAME, Segment.C)
    return CUSTOMER


@pytest.fixture
def prioritized(add_customer: Callable[..., Any]) -> str:
    add_customer(CUSTOMER, NAME, Segment.A)
    return CUSTOMER


# --------------------------------------------------------------------------- customers, ids


def test_an_unknown_customer_is_refused(app: ActivityApplication, clock: ManualClock) -> None:
    error = refused(app, lambda: plan(app, clock, customer_id="nobody"))
    assert (error.code, error.field) == ("unknown_customer", "customer_id")
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
    assert file_of(app).customer_id == customer
    with pytest.raises(NotFound):
        app.activity(file_id)
    with pytest.raises(NotFound):
        app.history(file_id)
    with pytest.raises(NotFound):
        app.activity(file_id, as_of=clock.now)


# ------------------------------------------------------------------ a refusal stores nothing


@dataclass(frozen=True)
class Refused:
    """A command one rule refuses, run on a planned `setup` activity when it has one.

    Where it can, the command has changed something in memory before the rule refuses it
    (an attachment added, a next activity planned), so a partial save would show.
    """

    code: str
    field: str | None
    command: Callable[[ActivityApplication, ManualClock, Activity], object]
    setup: dict[str, Any]


def _follow_up(clock: ManualClock) -> PlanRequest:
    return request(clock, in_=7 * DAY, type_=ActivityType.SALES_MEETING)


REFUSED = {
    "R1-no-answer": Refused(
        "R1",
        "note",
        lambda app, clock, a: complete(
            app, a.id, note="Ringede, ingen svar", attachments=[AGREEMENT]
        ),
        {},
    ),
    "R2-same-form": Refused(
        "R2",
        "type",
        lambda app, clock, a: app.retype(
            ANNA, a.id, type_=ActivityType.CONTACT, channel=Channel.PHONE, reason=None
        ),
        {},
    ),
    "R3-not-booked": Refused(
        "R3",
        "type",
        lambda app, clock, a: register(
            app,
            clock,
            type=ActivityType.STATUS_MEETING,
            channel=Channel.PHYSICAL,
            next_activity=_follow_up(clock),
        ),
        {},
    ),
    "R4-no-value": Refused(
        "R4",
        "note",
        lambda app, clock, a: register(
            app, clock, note="Ringede, ingen svar. Ok.", attachments=[AGREEMENT]
        ),
        {},
    ),
    "R5-span": Refused(
        "R5",
        "ends_at",
        lambda app, clock, a: app.plan(
            ANNA, replace(request(clock), ends_at=request(clock).starts_at)
        ),
        {},
    ),
    "R6-held-later": Refused(
        "R6",
        "held_at",
        lambda app, clock, a: complete(
            app, a.id, held_at=clock.now + HOUR, next_activity=_follow_up(clock)
        ),
        {},
    ),
    "R7-other-customer": Refused(
        "R7",
        "next_activity.customer_id",
        lambda app, clock, a: complete(
            app, a.id, next_activity=request(clock, customer_id="c-other")
        ),
        {},
    ),
    "R8-last-future": Refused(
        "R8",
        "next_activity",
        lambda app, clock, a: app.cancel(ANNA, a.id, reason="Dobbeltbooket"),
        {"customer_id": "c-prio"},
    ),
    "R9-no-proposal": Refused(
        "R9",
        "attachments",
        lambda app, clock, a: complete(
            app, a.id, attachments=[AGREEMENT], next_activity=_follow_up(clock)
        ),
        {"type_": ActivityType.PROPOSAL_MEETING, "channel": Channel.PHYSICAL},
    ),
    "R10-no-profile": Refused(
        "R10",
        "discovery_profile",
        lambda app, clock, a: register(
            app,
            clock,
            type=ActivityType.DISCOVERY_MEETING,
            channel=Channel.VIDEO,
            next_activity=_follow_up(clock),
        ),
        {},
    ),
    "final": Refused(
        "invalid_transition",
        None,
        lambda app, clock, a: app.cancel(ANNA, a.id, reason="Igen"),
        {"completed": True},
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=list(REFUSED))
def test_a_refusal_stores_nothing(
    app: ActivityApplication,
    clock: ManualClock,
    add_customer: Callable[..., Any],
    case: Refused,
) -> None:
    add_customer(CUSTOMER, NAME, Segment.C)
    add_customer("c-other", "Slagter Jensen", Segment.C)
    add_customer("c-prio", "Tømrer Olsen", Segment.A)
    setup = dict(case.setup)
    completed = setup.pop("completed", False)
    activity = plan(app, clock, **setup)
    if completed:
        complete(app, activity.id)
    stored = app.activity(activity.id)
    open_before = file_of(app, activity.customer_id).open_activities

    error = refused(app, lambda: case.command(app, clock, activity))

    assert (error.code, error.field) == (case.code, case.field)
    assert error.rule == (case.code if case.code.startswith("R") else None)
    after = app.activity(activity.id)
    assert (after.version, after.status, after.attachments) == (
        stored.version,
        stored.status,
        stored.attachments,
    )
    assert file_of(app, activity.customer_id).open_activities == open_before


# --------------------------------------------------------------------------- one save


def test_planning_saves_the_activity_with_its_place_in_the_customer_file(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    before = app.recorder.max_notification_id()
    outcome = app.plan(ANNA, request(clock, type_=ActivityType.SALES_MEETING))

    assert (outcome.status, outcome.replayed) == (201, False)
    stored = app.activity(outcome.activity.id)
    assert (stored.status, stored.version, stored.type, stored.subject) == (
        PLANNED,
        1,
        "sales_meeting",
        "Forårskampagne",
    )
    assert file_of(app).open_activities == {stored.id: clock.now + DAY}
    assert saved_together(app, before) == ["ActivityScheduled", "Opened", "Planned"]


def test_R1_every_move_is_saved_with_the_new_time_in_the_customer_file(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock)
    first_time = activity.starts_at
    second_time, third_time = first_time + DAY, first_time + 2 * DAY

    app.move(ANNA, activity.id, starts_at=second_time, ends_at=None, reason="no_answer", note=None)
    clock.advance(hours=2)
    app.move(
        ANNA,
        activity.id,
        starts_at=third_time,
        ends_at=None,
        reason=MoveReason.CUSTOMER_REQUEST,
        note="Kunden er på ferie",
    )

    history = app.history(activity.id)
    assert [(type(e).__name__, e.starts_at) for e in history] == [
        ("Planned", first_time),
        ("Moved", second_time),
        ("Moved", third_time),
    ]
    assert app.activity(activity.id).status == PLANNED
    assert file_of(app).open_activities == {activity.id: third_time}


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
    assert file_of(app).open_activities == {following.id: follow_up.starts_at}
    # one transaction: completion, follow-up and the customer's file (close + schedule)
    assert saved_together(app, before) == [
        "ActivityClosed",
        "ActivityScheduled",
        "Completed",
        "Planned",
    ]


def test_R7_a_registration_plans_the_next_activity_in_the_same_transaction(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    follow_up = request(clock, in_=7 * DAY, type_=ActivityType.SALES_MEETING)
    before = app.recorder.max_notification_id()

    activity = register(app, clock, next_step="Book salgsmøde", next_activity=follow_up)

    assert activity.next_activity_id is not None
    assert app.activity(activity.next_activity_id).status == PLANNED
    assert file_of(app).open_activities == {activity.next_activity_id: follow_up.starts_at}
    assert saved_together(app, before) == ["ActivityScheduled", "Opened", "Planned", "Registered"]


@pytest.mark.parametrize(
    ("change", "code"),
    [({"in_": -HOUR}, "R5"), ({"customer_id": "c-other"}, "R7")],
    ids=["follow-up-in-the-past", "follow-up-on-another-customer"],
)
@pytest.mark.parametrize("command", ["complete", "register"])
def test_R7_an_invalid_next_activity_saves_neither_it_nor_the_command(
    app: ActivityApplication,
    clock: ManualClock,
    add_customer: Callable[..., Any],
    change: dict[str, Any],
    code: str,
    command: str,
) -> None:
    add_customer(CUSTOMER, NAME, Segment.C)
    add_customer("c-other", "Slagter Jensen", Segment.C)
    activity = plan(app, clock)
    follow_up = request(clock, **change)

    if command == "complete":
        error = refused(
            app,
            lambda: complete(app, activity.id, attachments=[AGREEMENT], next_activity=follow_up),
        )
    else:
        error = refused(app, lambda: register(app, clock, next_activity=follow_up))

    assert error.code == code
    assert kinds(app, activity.id) == ["Planned"]
    assert file_of(app).open_activities == {activity.id: activity.starts_at}


def test_R9_the_proposal_is_saved_with_the_completion(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    activity = plan(app, clock, type_=ActivityType.PROPOSAL_MEETING, channel=Channel.PHYSICAL)
    complete(app, activity.id, attachments=[PROPOSAL])
    stored = app.activity(activity.id)
    assert stored.status == COMPLETED
    assert [a["kind"] for a in stored.attachments] == ["proposal"]
    assert kinds(app, activity.id) == ["Planned", "AttachmentAdded", "Completed"]


# --------------------------------------------------------------------------- R8 reads the store


def test_R8_the_refusal_names_the_customer_as_the_directory_has_it(
    app: ActivityApplication, clock: ManualClock, add_customer: Callable[..., Any]
) -> None:
    add_customer(CUSTOMER, NAME, Segment.ANNUAL_AGREEMENT)
    activity = plan(app, clock)

    error = refused(app, lambda: complete(app, activity.id, attachments=[AGREEMENT]))

    assert (error.code, error.kind, error.field) == ("R8", "conflict", "next_activity")
    assert error.details == {
        "customer_id": CUSTOMER,
        "customer_name": NAME,
        "segment": Segment.ANNUAL_AGREEMENT.value,
        "field": "next_activity",
    }
    assert f"{NAME} ({CUSTOMER})" in error.message
    assert app.activity(activity.id).status == PLANNED


def test_R8_another_stored_future_activity_allows_completing_and_cancelling(
    app: ActivityApplication, clock: ManualClock, prioritized: str
) -> None:
    first, second, third = (plan(app, clock, in_=n * DAY) for n in (1, 2, 3))

    complete(app, first.id)
    app.cancel(ANNA, second.id, reason="Dobbeltbooket")

    assert app.activity(first.id).status == COMPLETED
    assert app.activity(second.id).status == CANCELLED
    assert file_of(app).open_activities == {third.id: third.starts_at}
    error = refused(app, lambda: app.cancel(ANNA, third.id, reason="Kunden aflyste"))
    assert error.code == "R8"


@pytest.mark.parametrize("command", ["complete", "cancel"])
def test_R8_the_next_activity_planned_in_the_same_save_allows_closing_the_last_one(
    app: ActivityApplication, clock: ManualClock, prioritized: str, command: str
) -> None:
    last = plan(app, clock)
    replacement = request(clock, in_=30 * DAY, subject="Ny dato")
    before = app.recorder.max_notification_id()

    if command == "complete":
        complete(app, last.id, next_activity=replacement)
        closed = COMPLETED
    else:
        app.cancel(ANNA, last.id, reason="Kunden er syg", next_activity=replacement)
        closed = CANCELLED

    assert app.activity(last.id).status == closed
    next_id = app.history(last.id)[-1].next_activity_id
    assert next_id is not None
    following = app.activity(next_id)
    assert (following.status, following.subject, following.customer_id) == (
        PLANNED,
        "Ny dato",
        prioritized,
    )
    assert file_of(app).open_activities == {next_id: replacement.starts_at}
    assert saved_together(app, before) == sorted(
        ["ActivityClosed", "ActivityScheduled", "Planned", closed.capitalize()]
    )


# --------------------------------------------------------------------------- R10 profile history


def test_R10_the_profile_is_kept_per_customer_with_its_history(
    app: ActivityApplication, clock: ManualClock, customer: str
) -> None:
    first = plan(app, clock, type_=ActivityType.DISCOVERY_MEETING, channel=Channel.PHYSICAL)
    second = plan(
        app, clock, in_=30 * DAY, type_=ActivityType.DISCOVERY_MEETING, channel=Channel.VIDEO
    )
    before_any = clock.now
    refused(app, lambda: app.discovery_profile(customer), NotFound)
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
    activity = register(
        app,
        clock,
        type=ActivityType.DISCOVERY_MEETING,
        channel=Channel.VIDEO,
        discovery_profile=PROFILE,
    )
    profile, revision, event = app.discovery_profile(customer)
    assert (profile, revision, event.activity_id) == (PROFILE, 1, activity.id)


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
    held_at = clock.now - HOUR
    complete(app, activity.id, held_at=held_at)

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
    # `as_of` follows when it was recorded, not when it was held.
    before_completion = app.activity(activity.id, as_of=clock.now - timedelta(seconds=1))
    assert (before_completion.version, before_completion.type, before_completion.status) == (
        3,
        "sales_meeting",
        PLANNED,
    )
    now = app.activity(activity.id, as_of=clock.now)
    assert (now.status, now.completed_at) == (COMPLETED, held_at)
    with pytest.raises(NotFound):
        app.activity(activity.id, as_of=planned_at - timedelta(seconds=1))
