"""Who may do what through the activity Application, and that every event names its actor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from activity.application import ActivityApplication, Forbidden
from activity.domain import (
    CANCELLED,
    COMPLETED,
    Activity,
    AttachmentRequest,
    CompletionRequest,
    PlanRequest,
    RegistrationRequest,
)
from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason, Segment
from crm_platform.auth.principal import Principal

from tests.support.clock import ManualClock
from tests.support.people import ANNA, BO, MIA, SERVICE

CUSTOMER = "c-200"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
VALUABLE = "Kunden åbner ny butik i Køge til maj, vil have tilbud på print"
NOBODY = Principal("eve@example.dk", "Eve", frozenset())
AGREEMENT = AttachmentRequest(
    kind=AttachmentKind.AGREEMENT,
    filename="aftale.pdf",
    media_type="application/pdf",
    size=1_000,
    sha256="b" * 64,
    uri="blob://attachments/aftale.pdf",
)


@pytest.fixture(autouse=True)
def customer(add_customer: Callable[..., Any]) -> str:
    add_customer(CUSTOMER, "Slagter Jensen", Segment.D)
    return CUSTOMER


def request(clock: ManualClock, owner: str = ANNA.user_id, in_: timedelta = DAY) -> PlanRequest:
    return PlanRequest(
        customer_id=CUSTOMER,
        owner=owner,
        type=ActivityType.STATUS_MEETING,
        channel=Channel.VIDEO,
        subject="Status på kampagnen",
        starts_at=clock.now + in_,
        ends_at=clock.now + in_ + HOUR,
    )


def annas_activity(app: ActivityApplication, clock: ManualClock) -> Activity:
    return app.plan(ANNA, request(clock)).activity


def refused(
    app: ActivityApplication, command: Callable[[], object], error: type[Exception] = Forbidden
) -> Any:
    before = app.recorder.max_notification_id()
    with pytest.raises(error) as raised:
        command()
    assert app.recorder.max_notification_id() == before, "a refused command stored events"
    return raised.value


def registration(clock: ManualClock, owner: str) -> RegistrationRequest:
    return RegistrationRequest(
        customer_id=CUSTOMER,
        owner=owner,
        type=ActivityType.CONTACT,
        channel=Channel.PHONE,
        held_at=clock.now - HOUR,
        note=VALUABLE,
    )


CHANGES: dict[str, Callable[[ActivityApplication, Principal, Activity], object]] = {
    "move": lambda app, who, a: app.move(
        who, a.id, starts_at=a.starts_at + DAY, ends_at=None, reason=MoveReason.OTHER, note=None
    ),
    "retype": lambda app, who, a: app.retype(
        who, a.id, type_=ActivityType.SALES_MEETING, channel=None, reason=None
    ),
    "attach": lambda app, who, a: app.add_attachment(who, a.id, AGREEMENT),
    "complete": lambda app, who, a: app.complete(
        who, a.id, CompletionRequest(note="Kunden er tilfreds", next_step="Ring i maj")
    ),
    "cancel": lambda app, who, a: app.cancel(who, a.id, reason="Aflyst"),
}


@pytest.mark.parametrize("command", list(CHANGES))
def test_a_consultant_may_not_change_a_colleagues_activity(
    app: ActivityApplication, clock: ManualClock, command: str
) -> None:
    activity = annas_activity(app, clock)
    refused(app, lambda: CHANGES[command](app, BO, activity))
    refused(app, lambda: CHANGES[command](app, NOBODY, activity))
    assert [type(e).__name__ for e in app.history(activity.id)] == ["Planned"]


@pytest.mark.parametrize("who", [ANNA, MIA, SERVICE], ids=["owner", "manager", "service"])
@pytest.mark.parametrize("command", list(CHANGES))
def test_the_owner_a_manager_or_a_service_may_change_an_activity(
    app: ActivityApplication, clock: ManualClock, command: str, who: Principal
) -> None:
    activity = annas_activity(app, clock)
    CHANGES[command](app, who, activity)
    history = app.history(activity.id)
    assert len(history) == 2
    assert history[-1].actor == who.user_id


def test_only_a_manager_or_a_service_may_reassign(
    app: ActivityApplication, clock: ManualClock
) -> None:
    activity = annas_activity(app, clock)
    refused(app, lambda: app.reassign(ANNA, activity.id, owner=BO.user_id))
    refused(app, lambda: app.reassign(BO, activity.id, owner=BO.user_id))

    app.reassign(MIA, activity.id, owner=BO.user_id)
    assert app.activity(activity.id).owner == BO.user_id
    app.reassign(SERVICE, activity.id, owner=ANNA.user_id)
    app.reassign(MIA, activity.id, owner=BO.user_id)

    # the new owner may now act, the old one may not
    refused(app, lambda: CHANGES["move"](app, ANNA, activity))
    CHANGES["move"](app, BO, activity)
    assert [(type(e).__name__, e.actor) for e in app.history(activity.id)] == [
        ("Planned", ANNA.user_id),
        ("Reassigned", MIA.user_id),
        ("Reassigned", SERVICE.user_id),
        ("Reassigned", MIA.user_id),
        ("Moved", BO.user_id),
    ]


def test_a_consultant_plans_and_registers_only_for_themselves(
    app: ActivityApplication, clock: ManualClock
) -> None:
    refused(app, lambda: app.plan(BO, request(clock, owner=ANNA.user_id)))
    refused(app, lambda: app.plan(NOBODY, request(clock, owner=NOBODY.user_id)))
    refused(app, lambda: app.register(BO, registration(clock, ANNA.user_id)))

    own = app.plan(BO, request(clock, owner=BO.user_id)).activity
    registered = app.register(BO, registration(clock, BO.user_id)).activity
    assert (own.owner, registered.owner) == (BO.user_id, BO.user_id)


def test_a_manager_plans_and_registers_for_a_consultant(
    app: ActivityApplication, clock: ManualClock
) -> None:
    planned = app.plan(MIA, request(clock, owner=ANNA.user_id)).activity
    registered = app.register(MIA, registration(clock, ANNA.user_id)).activity

    assert (planned.owner, registered.owner) == (ANNA.user_id, ANNA.user_id)
    assert app.history(planned.id)[0].actor == MIA.user_id
    assert app.history(registered.id)[0].actor == MIA.user_id


def test_a_consultant_may_not_plan_the_next_activity_for_a_colleague(
    app: ActivityApplication, clock: ManualClock
) -> None:
    activity = annas_activity(app, clock)
    handed_to_bo = CompletionRequest(
        note="Kunden er tilfreds",
        next_step="Bo tager over",
        next_activity=request(clock, owner=BO.user_id, in_=7 * DAY),
    )
    refused(
        app,
        lambda: app.complete(ANNA, activity.id, handed_to_bo),
    )
    assert app.activity(activity.id).status != COMPLETED
    done = app.complete(MIA, activity.id, handed_to_bo).activity
    assert done.next_activity_id is not None
    assert app.activity(done.next_activity_id).owner == BO.user_id


def test_every_event_records_its_actor(app: ActivityApplication, clock: ManualClock) -> None:
    activity = annas_activity(app, clock)
    CHANGES["move"](app, ANNA, activity)
    CHANGES["retype"](app, MIA, activity)
    CHANGES["attach"](app, SERVICE, activity)
    app.reassign(MIA, activity.id, owner=BO.user_id)
    CHANGES["cancel"](app, BO, activity)

    assert app.activity(activity.id).status == CANCELLED
    assert [(type(e).__name__, e.actor) for e in app.history(activity.id)] == [
        ("Planned", ANNA.user_id),
        ("Moved", ANNA.user_id),
        ("Retyped", MIA.user_id),
        ("AttachmentAdded", SERVICE.user_id),
        ("Reassigned", MIA.user_id),
        ("Cancelled", BO.user_id),
    ]
