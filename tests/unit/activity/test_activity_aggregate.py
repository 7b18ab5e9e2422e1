"""The `Activity` aggregate: each rule R1–R10 it enforces, and its state machine. No I/O."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from activity.domain import (
    CANCELLED,
    COMPLETED,
    PLANNED,
    Activity,
    AttachmentRequest,
    CompletionRequest,
    PlanRequest,
    RegistrationRequest,
)
from activity.rules import DISCOVERY_FIELDS, DiscoveryProfile
from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason
from crm_platform.errors import DomainError

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TOMORROW_10 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ANNA, BO = "anna@example.dk", "bo@example.dk"
VALUABLE = "Kunden åbner ny butik i Køge til maj, vil have tilbud på print"
PROFILE = DiscoveryProfile.from_mapping(
    {
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
)


def plan(
    type_: ActivityType = ActivityType.CONTACT,
    channel: Channel = Channel.PHONE,
    *,
    subject: str = "Forårskampagne",
    starts_at: datetime = TOMORROW_10,
    ends_at: datetime | None = None,
    now: datetime = NOW,
) -> Activity:
    request = PlanRequest(
        "c-1",
        ANNA,
        type_,
        channel,
        subject,
        starts_at,
        ends_at if ends_at is not None else starts_at + HOUR,
    )
    return Activity.plan(uuid.uuid4(), request, actor=ANNA, now=now)


def planned(
    type_: ActivityType = ActivityType.CONTACT, channel: Channel = Channel.PHONE
) -> Activity:
    """A planned activity whose creation events have been collected (as if saved)."""
    activity = plan(type_, channel)
    activity.collect_events()
    return activity


def register(
    type_: ActivityType = ActivityType.CONTACT,
    channel: Channel = Channel.PHONE,
    *,
    note: str = VALUABLE,
    held_at: datetime = NOW - HOUR,
    booked: bool = False,
    profile: DiscoveryProfile | None = None,
    attachments: tuple[AttachmentRequest, ...] = (),
) -> Activity:
    request = RegistrationRequest(
        "c-1", ANNA, type_, channel, held_at, note, booked=booked, attachments=attachments
    )
    return Activity.register(
        uuid.uuid4(), request, profile=profile, next_activity_id=None, actor=ANNA, now=NOW
    )


def complete(
    activity: Activity,
    *,
    note: str = "Kunden vil have tilbud på 4 ugers print før åbningen",
    next_step: str = "Send tilbud senest fredag",
    held_at: datetime | None = None,
    discovery_profile: DiscoveryProfile | None = None,
    next_activity_id: uuid.UUID | None = None,
    actor: str = ANNA,
    now: datetime = NOW,
) -> None:
    activity.complete(
        CompletionRequest(note, next_step, held_at=held_at),
        profile=discovery_profile,
        next_activity_id=next_activity_id,
        actor=actor,
        now=now,
    )


def move(activity: Activity, starts_at: datetime, **overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "starts_at": starts_at,
        "ends_at": None,
        "reason": MoveReason.NO_ANSWER,
        "note": None,
        "actor": ANNA,
        "now": NOW,
    }
    arguments.update(overrides)
    activity.move(**arguments)


def attach(activity: Activity, kind: AttachmentKind) -> None:
    activity.add_attachment(
        attachment_id=uuid.uuid4(),
        kind=kind,
        filename="oplaeg.pdf",
        media_type="application/pdf",
        size=1024,
        sha256="0" * 64,
        uri="blob://attachments/oplaeg.pdf",
        actor=ANNA,
        now=NOW,
    )


def refused(command: Callable[[], object], activity: Activity) -> DomainError:
    """Run a command the rules must refuse; check it left no event and no change behind."""
    version, state = activity.version, dict(activity.__dict__)
    with pytest.raises(DomainError) as error:
        command()
    assert activity.pending_events == []
    assert activity.version == version
    assert {k: v for k, v in activity.__dict__.items() if k != "_pending_events"} == {
        k: v for k, v in state.items() if k != "_pending_events"
    }
    return error.value


def replayed(activity: Activity, events: list[Any]) -> Activity:
    copy: Activity | None = None
    for event in events:
        copy = event.mutate(copy)
    assert copy is not None
    return copy


# --------------------------------------------------------------------------- R5 planning


def test_R5_planning_records_subject_type_channel_and_time() -> None:
    activity = plan(ActivityType.SALES_MEETING, Channel.VIDEO, subject="  Annoncer til maj  ")

    assert (activity.status, activity.version) == (PLANNED, 1)
    assert (activity.type, activity.channel) == ("sales_meeting", "video")
    assert activity.subject == "Annoncer til maj"
    assert (activity.starts_at, activity.ends_at) == (TOMORROW_10, TOMORROW_10 + HOUR)
    [event] = activity.collect_events()
    assert isinstance(event, Activity.Planned)
    assert (event.type, event.channel, event.actor, event.timestamp) == (
        "sales_meeting",
        "video",
        ANNA,
        NOW,
    )


@pytest.mark.parametrize("subject", ["", "   "])
def test_R5_planning_needs_a_subject(subject: str) -> None:
    with pytest.raises(DomainError) as error:
        plan(subject=subject)
    assert error.value.code == "R5"


@pytest.mark.parametrize("length", [timedelta(0), -HOUR])
def test_R5_a_planned_activity_ends_after_it_starts(length: timedelta) -> None:
    with pytest.raises(DomainError) as error:
        plan(ends_at=TOMORROW_10 + length)
    assert (error.value.rule, error.value.field) == ("R5", "ends_at")


@pytest.mark.parametrize("starts_at", [NOW, NOW - timedelta(minutes=1), NOW - timedelta(days=7)])
def test_R5_an_activity_is_not_planned_in_the_past(starts_at: datetime) -> None:
    with pytest.raises(DomainError) as error:
        plan(starts_at=starts_at)
    assert (error.value.rule, error.value.field) == ("R5", "starts_at")


@pytest.mark.parametrize("channel", [Channel.PHONE, Channel.VIDEO, Channel.EMAIL])
def test_R5_R3_an_unannounced_visit_is_planned_only_as_physical(channel: Channel) -> None:
    with pytest.raises(DomainError) as error:
        plan(ActivityType.UNANNOUNCED_VISIT, channel)
    assert error.value.code == "R3"
    assert plan(ActivityType.UNANNOUNCED_VISIT, Channel.PHYSICAL).channel == "physical"


# --------------------------------------------------------------------------- R1 move


def test_R1_a_move_keeps_every_earlier_time_and_does_not_complete() -> None:
    activity = plan()
    first, second = TOMORROW_10 + timedelta(days=1), TOMORROW_10 + timedelta(days=2)

    move(activity, first)
    move(activity, second, reason=MoveReason.CUSTOMER_REQUEST, note="Kunden er syg")

    assert activity.status == PLANNED
    assert (activity.starts_at, activity.ends_at) == (second, second + HOUR)
    events = activity.collect_events()
    assert [type(e).__name__ for e in events] == ["Planned", "Moved", "Moved"]
    assert [e.starts_at for e in events] == [TOMORROW_10, first, second]
    assert [e.reason for e in events[1:]] == ["no_answer", "customer_request"]
    assert events[2].note == "Kunden er syg"
    assert replayed(activity, events).__dict__ == activity.__dict__


def test_R1_a_move_keeps_the_duration_unless_a_new_end_is_given() -> None:
    activity = planned()
    later = TOMORROW_10 + timedelta(days=1)
    move(activity, later)
    assert activity.ends_at == later + HOUR
    move(activity, later, ends_at=later + timedelta(minutes=15))
    assert activity.ends_at == later + timedelta(minutes=15)


@pytest.mark.parametrize("starts_at", [NOW, NOW - timedelta(seconds=1), NOW - timedelta(days=1)])
def test_R1_a_move_needs_a_future_time(starts_at: datetime) -> None:
    activity = planned()
    error = refused(lambda: move(activity, starts_at), activity)
    assert error.code == "R1"
    assert error.details == {"field": "starts_at"}


def test_R1_a_move_is_measured_against_the_injected_now() -> None:
    activity = planned()
    later_now = TOMORROW_10 + timedelta(days=3)
    target = TOMORROW_10 + timedelta(days=2)  # future for NOW, past for later_now
    error = refused(lambda: move(activity, target, now=later_now), activity)
    assert error.code == "R1"
    move(activity, target, now=NOW)
    assert activity.starts_at == target


def test_R1_a_move_needs_a_new_time() -> None:
    activity = planned()
    error = refused(lambda: move(activity, TOMORROW_10), activity)
    assert error.code == "R1"


@pytest.mark.parametrize("reason", [None, "", "because"])
def test_R1_a_move_needs_a_reason(reason: object) -> None:
    activity = planned()
    error = refused(
        lambda: move(activity, TOMORROW_10 + timedelta(days=1), reason=reason), activity
    )
    assert error.code == "R1"
    assert error.details == {"field": "reason"}


def test_R1_a_moved_activity_ends_after_it_starts() -> None:
    activity = planned()
    later = TOMORROW_10 + timedelta(days=1)
    error = refused(lambda: move(activity, later, ends_at=later), activity)
    assert (error.rule, error.field) == ("R5", "ends_at")


# --------------------------------------------------------------------------- R2 retype


def test_R2_a_retype_keeps_the_old_type_in_the_history() -> None:
    activity = plan(ActivityType.CONTACT, Channel.PHONE)

    activity.retype(
        type_=ActivityType.SALES_MEETING,
        channel=Channel.PHYSICAL,
        reason="Kunden ville mødes",
        actor=ANNA,
        now=NOW,
    )

    assert (activity.type, activity.channel, activity.status) == (
        "sales_meeting",
        "physical",
        PLANNED,
    )
    events = activity.collect_events()
    assert [(type(e).__name__, e.type, e.channel) for e in events] == [
        ("Planned", "contact", "phone"),
        ("Retyped", "sales_meeting", "physical"),
    ]
    assert events[1].reason == "Kunden ville mødes"


def test_R2_a_retype_keeps_the_channel_unless_a_new_one_is_given() -> None:
    activity = planned(ActivityType.CONTACT, Channel.VIDEO)
    activity.retype(
        type_=ActivityType.STATUS_MEETING, channel=None, reason=None, actor=ANNA, now=NOW
    )
    assert (activity.type, activity.channel) == ("status_meeting", "video")


def test_R2_a_retype_may_change_only_the_channel() -> None:
    activity = planned(ActivityType.STATUS_MEETING, Channel.VIDEO)
    activity.retype(
        type_=ActivityType.STATUS_MEETING,
        channel=Channel.PHYSICAL,
        reason=None,
        actor=ANNA,
        now=NOW,
    )
    assert (activity.type, activity.channel) == ("status_meeting", "physical")


def test_R2_a_retype_needs_another_type_or_channel() -> None:
    activity = planned(ActivityType.CONTACT, Channel.PHONE)
    error = refused(
        lambda: activity.retype(
            type_=ActivityType.CONTACT, channel=None, reason=None, actor=ANNA, now=NOW
        ),
        activity,
    )
    assert error.code == "R2"


def test_R2_R3_a_retype_to_unannounced_visit_must_be_physical() -> None:
    activity = planned(ActivityType.CONTACT, Channel.PHONE)
    error = refused(
        lambda: activity.retype(
            type_=ActivityType.UNANNOUNCED_VISIT, channel=None, reason=None, actor=ANNA, now=NOW
        ),
        activity,
    )
    assert error.code == "R3"


# --------------------------------------------------------------------------- R3/R4 registration


def test_R4_a_registered_activity_starts_completed() -> None:
    activity = register(ActivityType.CONTACT, Channel.PHONE, held_at=NOW - HOUR)

    assert activity.status == COMPLETED
    assert activity.registered
    assert activity.completed_at == NOW - HOUR
    assert activity.starts_at == activity.ends_at == NOW - HOUR
    assert activity.note == VALUABLE
    [event] = activity.collect_events()
    assert isinstance(event, Activity.Registered)
    assert event.actor == ANNA


MEETINGS = [
    ActivityType.DISCOVERY_MEETING,
    ActivityType.PROPOSAL_MEETING,
    ActivityType.STATUS_MEETING,
    ActivityType.SALES_MEETING,
]
PROPOSAL = AttachmentRequest(
    AttachmentKind.PROPOSAL, "oplaeg.pdf", "application/pdf", 1024, "0" * 64, "blob://a/1"
)


@pytest.mark.parametrize("type_", [*MEETINGS, ActivityType.CONTACT])
def test_R3_a_physical_activity_not_booked_is_registered_only_as_unannounced_visit(
    type_: ActivityType,
) -> None:
    with pytest.raises(DomainError) as error:
        register(type_, Channel.PHYSICAL, profile=PROFILE, attachments=(PROPOSAL,))
    assert (error.value.rule, error.value.field) == ("R3", "type")


@pytest.mark.parametrize("type_", MEETINGS)
def test_R3_R4_a_booked_physical_meeting_is_registered_as_what_it_was(
    type_: ActivityType,
) -> None:
    activity = register(
        type_, Channel.PHYSICAL, booked=True, note="ok", profile=PROFILE, attachments=(PROPOSAL,)
    )
    assert (activity.status, activity.type, activity.booked) == (COMPLETED, type_.value, True)
    [event, *_] = activity.collect_events()
    assert isinstance(event, Activity.Registered)
    assert event.booked


def test_R3_a_booked_visit_is_not_unannounced() -> None:
    with pytest.raises(DomainError) as error:
        register(ActivityType.UNANNOUNCED_VISIT, Channel.PHYSICAL, booked=True)
    assert (error.value.rule, error.value.field) == ("R3", "booked")


def test_R3_R4_an_unannounced_visit_is_always_registered_even_with_a_short_note() -> None:
    activity = register(ActivityType.UNANNOUNCED_VISIT, Channel.PHYSICAL, note="ok")
    assert (activity.status, activity.type, activity.note) == (COMPLETED, "unannounced_visit", "ok")


@pytest.mark.parametrize("note", ["", "   "])
def test_R4_even_a_physical_registration_needs_a_note(note: str) -> None:
    with pytest.raises(DomainError) as error:
        register(ActivityType.UNANNOUNCED_VISIT, Channel.PHYSICAL, note=note)
    assert error.value.code == "R4"


@pytest.mark.parametrize(
    "note", ["Ringede, ingen svar", "ok", "Ringede igen. Ingen svar. Lagt besked. Ok. Mail sendt."]
)
def test_R4_an_unplanned_contact_without_a_valuable_note_is_refused(note: str) -> None:
    with pytest.raises(DomainError) as error:
        register(ActivityType.CONTACT, Channel.PHONE, note=note)
    assert (error.value.rule, error.value.field) == ("R4", "note")


def test_R4_an_unplanned_contact_with_a_valuable_note_is_registered() -> None:
    assert register(ActivityType.CONTACT, Channel.PHONE, note=VALUABLE).status == COMPLETED


def test_R6_a_registration_records_what_already_happened() -> None:
    with pytest.raises(DomainError) as error:
        register(held_at=NOW + timedelta(minutes=1))
    assert (error.value.rule, error.value.field) == ("R6", "held_at")
    assert register(held_at=NOW).status == COMPLETED


def test_R10_a_registered_discovery_meeting_needs_the_profile() -> None:
    with pytest.raises(DomainError) as error:
        register(ActivityType.DISCOVERY_MEETING, Channel.VIDEO)
    assert error.value.code == "R10"
    assert error.value.details["missing"] == list(DISCOVERY_FIELDS)
    activity = register(ActivityType.DISCOVERY_MEETING, Channel.VIDEO, profile=PROFILE)
    [event] = activity.collect_events()
    assert event.discovery_profile == PROFILE.as_dict()


def test_R9_a_registered_proposal_meeting_needs_its_written_proposal() -> None:
    with pytest.raises(DomainError) as error:
        register(ActivityType.PROPOSAL_MEETING, Channel.VIDEO)
    assert (error.value.rule, error.value.field) == ("R9", "attachments")
    activity = register(ActivityType.PROPOSAL_MEETING, Channel.VIDEO, attachments=(PROPOSAL,))
    assert activity.status == COMPLETED


# --------------------------------------------------------------------------- R6 completion


def test_R6_completion_records_the_note_and_the_next_step() -> None:
    activity = planned()
    next_id = uuid.uuid4()

    complete(
        activity, note="  Vil have tilbud  ", next_step=" Send tilbud ", next_activity_id=next_id
    )

    assert activity.status == COMPLETED
    assert (activity.note, activity.next_step) == ("Vil have tilbud", "Send tilbud")
    assert activity.completed_at == NOW  # held now, unless said otherwise
    assert activity.next_activity_id == next_id
    [event] = activity.collect_events()
    assert isinstance(event, Activity.Completed)
    assert (event.actor, event.next_activity_id) == (ANNA, next_id)


@pytest.mark.parametrize(
    ("note", "next_step"),
    [("", "Send tilbud"), ("   ", "Send tilbud"), ("Vil have tilbud", ""), ("Vil have", " \n")],
)
def test_R6_completion_needs_a_note_and_a_next_step(note: str, next_step: str) -> None:
    activity = planned()
    error = refused(lambda: complete(activity, note=note, next_step=next_step), activity)
    assert error.code == "R6"
    assert activity.status == PLANNED


def test_R6_completion_records_when_the_activity_was_held() -> None:
    activity = plan(now=NOW - timedelta(days=3), starts_at=NOW - timedelta(days=1))
    activity.collect_events()
    complete(activity, held_at=NOW - timedelta(days=1))
    assert activity.completed_at == NOW - timedelta(days=1)
    [event] = activity.collect_events()
    assert (event.held_at, event.timestamp) == (NOW - timedelta(days=1), NOW)


@pytest.mark.parametrize(
    "held_at", [NOW + timedelta(seconds=1), NOW - timedelta(seconds=1)], ids=["future", "pre-plan"]
)
def test_R6_completion_is_held_between_planning_and_now(held_at: datetime) -> None:
    activity = planned()  # planned at NOW
    error = refused(lambda: complete(activity, held_at=held_at), activity)
    assert (error.rule, error.field) == ("R6", "held_at")


@pytest.mark.parametrize("channel", [Channel.PHONE, Channel.VIDEO])
def test_R1_an_unanswered_call_is_not_completed(channel: Channel) -> None:
    activity = planned(ActivityType.SALES_MEETING, channel)
    error = refused(lambda: complete(activity, note="Ringede, ingen svar"), activity)
    assert (error.rule, error.field, error.kind) == ("R1", "note", "conflict")
    assert "move" in error.message


def test_R1_a_physical_meeting_is_not_judged_as_a_call() -> None:
    activity = planned(ActivityType.STATUS_MEETING, Channel.PHYSICAL)
    complete(activity, note="Ingen svar på spørgsmålet om budget endnu")
    assert activity.status == COMPLETED


# --------------------------------------------------------------------------- R9 proposal


@pytest.mark.parametrize("kind", [None, AttachmentKind.AGREEMENT, AttachmentKind.EMAIL])
def test_R9_a_proposal_meeting_is_completed_only_with_a_proposal_attached(
    kind: AttachmentKind | None,
) -> None:
    activity = planned(ActivityType.PROPOSAL_MEETING, Channel.PHYSICAL)
    if kind is not None:
        attach(activity, kind)
        activity.collect_events()
    error = refused(lambda: complete(activity), activity)
    assert (error.code, error.kind) == ("R9", "conflict")


def test_R9_a_proposal_meeting_with_its_proposal_is_completed() -> None:
    activity = planned(ActivityType.PROPOSAL_MEETING, Channel.PHYSICAL)
    attach(activity, AttachmentKind.PROPOSAL)
    complete(activity)
    assert activity.status == COMPLETED
    assert [type(e).__name__ for e in activity.collect_events()] == [
        "AttachmentAdded",
        "Completed",
    ]
    assert [a["kind"] for a in activity.attachments] == ["proposal"]


def test_R9_applies_to_other_types_only_after_a_retype() -> None:
    activity = planned(ActivityType.STATUS_MEETING, Channel.PHYSICAL)
    activity.retype(
        type_=ActivityType.PROPOSAL_MEETING, channel=None, reason=None, actor=ANNA, now=NOW
    )
    activity.collect_events()
    assert refused(lambda: complete(activity), activity).code == "R9"
    other = planned(ActivityType.STATUS_MEETING, Channel.PHYSICAL)
    complete(other)
    assert other.status == COMPLETED


# --------------------------------------------------------------------------- R10 discovery


def test_R10_a_discovery_meeting_is_completed_only_with_the_profile() -> None:
    activity = planned(ActivityType.DISCOVERY_MEETING, Channel.PHYSICAL)
    error = refused(lambda: complete(activity), activity)
    assert error.code == "R10"
    assert error.details["missing"] == list(DISCOVERY_FIELDS)

    complete(activity, discovery_profile=PROFILE)

    assert activity.status == COMPLETED
    [event] = activity.collect_events()
    assert event.discovery_profile == PROFILE.as_dict()


# --------------------------------------------------------------------------- state machine


def _completed() -> Activity:
    activity = planned()
    complete(activity)
    activity.collect_events()
    return activity


def _registered() -> Activity:
    activity = register()
    activity.collect_events()
    return activity


def _cancelled() -> Activity:
    activity = planned()
    activity.cancel(reason="Kunden har lukket", next_activity_id=None, actor=ANNA, now=NOW)
    activity.collect_events()
    return activity


COMMANDS: dict[str, Callable[[Activity], object]] = {
    "move": lambda a: move(a, TOMORROW_10 + timedelta(days=5)),
    "retype": lambda a: a.retype(
        type_=ActivityType.SALES_MEETING, channel=None, reason=None, actor=ANNA, now=NOW
    ),
    "reassign": lambda a: a.reassign(owner=BO, actor=ANNA, now=NOW),
    "complete": complete,
    "cancel": lambda a: a.cancel(
        reason="Dobbeltbooket", next_activity_id=None, actor=ANNA, now=NOW
    ),
}


@pytest.mark.parametrize(
    "final", [_completed, _cancelled, _registered], ids=["completed", "cancelled", "registered"]
)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_completed_and_cancelled_are_final(final: Callable[[], Activity], command: str) -> None:
    activity = final()
    status = activity.status
    error = refused(lambda: COMMANDS[command](activity), activity)
    assert (error.code, error.kind) == ("invalid_transition", "conflict")
    assert error.details == {"status": status}


def test_a_cancelled_activity_takes_no_attachment() -> None:
    activity = _cancelled()
    error = refused(lambda: attach(activity, AttachmentKind.AGREEMENT), activity)
    assert (error.code, error.kind) == ("invalid_transition", "conflict")


def test_R6_documentation_may_be_attached_after_completion() -> None:
    activity = _completed()
    attach(activity, AttachmentKind.AGREEMENT)
    assert activity.status == COMPLETED
    assert [a["kind"] for a in activity.attachments] == ["agreement"]


def test_cancelling_needs_a_reason_and_ends_the_activity() -> None:
    activity = planned()
    error = refused(
        lambda: activity.cancel(reason="  ", next_activity_id=None, actor=ANNA, now=NOW), activity
    )
    assert (error.code, error.field) == ("reason", "reason")
    activity.cancel(reason="Kunden har lukket", next_activity_id=None, actor=BO, now=NOW)
    assert activity.status == CANCELLED
    [event] = activity.collect_events()
    assert (event.reason, event.actor) == ("Kunden har lukket", BO)


def test_reassigning_changes_the_owner_and_records_who_did_it() -> None:
    activity = planned()
    activity.reassign(owner=BO, actor="mia@example.dk", now=NOW)
    assert activity.owner == BO
    [event] = activity.collect_events()
    assert (event.owner, event.actor) == (BO, "mia@example.dk")
    error = refused(lambda: activity.reassign(owner=BO, actor=ANNA, now=NOW), activity)
    assert error.code == "owner"


# --------------------------------------------------------------------------- replay


def test_the_events_rebuild_the_same_activity() -> None:
    activity = plan(ActivityType.CONTACT, Channel.PHONE)
    move(activity, TOMORROW_10 + timedelta(days=1))
    activity.retype(
        type_=ActivityType.PROPOSAL_MEETING, channel=Channel.VIDEO, reason=None, actor=ANNA, now=NOW
    )
    attach(activity, AttachmentKind.PROPOSAL)
    activity.reassign(owner=BO, actor="mia@example.dk", now=NOW)
    complete(activity, actor=BO)
    events = list(activity.collect_events())

    copy = replayed(activity, events)

    assert copy.__dict__ == activity.__dict__
    assert copy.version == len(events) == 6
    assert all(e.actor for e in events)


# --------------------------------------------------------------------------- editing


def test_R5_an_edit_changes_subject_and_agenda_of_a_planned_activity() -> None:
    activity = planned()
    activity.edit(subject="  Sommerkampagne ", agenda=" Budget ", actor=BO, now=NOW)
    assert (activity.subject, activity.agenda) == ("Sommerkampagne", "Budget")
    activity.edit(subject="Sommerkampagne", agenda="", actor=BO, now=NOW)
    assert activity.agenda is None
    events = activity.collect_events()
    assert [(e.subject, e.agenda, e.actor) for e in events] == [
        ("Sommerkampagne", "Budget", BO),
        ("Sommerkampagne", None, BO),
    ]


@pytest.mark.parametrize(
    ("subject", "agenda", "code"),
    [("   ", None, "R5"), ("Forårskampagne", None, "unchanged")],
)
def test_an_edit_keeps_a_subject_and_changes_something(
    subject: str, agenda: str | None, code: str
) -> None:
    activity = planned()
    error = refused(
        lambda: activity.edit(subject=subject, agenda=agenda, actor=ANNA, now=NOW), activity
    )
    assert (error.code, error.field) == (code, "subject")


def test_only_a_planned_activity_is_edited() -> None:
    activity = _completed()
    error = refused(lambda: activity.edit(subject="Ny", agenda=None, actor=ANNA, now=NOW), activity)
    assert error.code == "invalid_transition"


def test_a_cancellation_names_the_activity_that_replaces_it() -> None:
    activity = planned()
    replacement = uuid.uuid4()
    activity.cancel(reason="Flyttet til ny dato", next_activity_id=replacement, actor=ANNA, now=NOW)
    assert (activity.status, activity.next_activity_id) == (CANCELLED, replacement)
