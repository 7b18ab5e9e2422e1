"""Activity events from the real broker into the Graph fake's calendars, on SQLite and PostgreSQL:
one Outlook event per planned activity, kept in step with moves, retypes, reassignments,
completion and cancellation; deleted-in-Outlook respected; status relayed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from calendar_sync.domain import CancelMode
from calendar_sync.graph import ACTIVITY_PROPERTY_ID, transaction_id_for
from calendar_sync.lanes import LANES_WORKER
from calendar_sync.settings import CalendarSyncSettings
from crm_contracts.calendar_sync import CalendarSyncStatus
from crm_contracts.enums import ActivityType, Channel, SyncStatus
from crm_contracts.wire import WireMessage
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging import dead_letter_topic
from crm_platform.messaging.kafka import ensure_topics
from crm_platform.messaging.transport import KafkaTransport

from tests.fakes import FakeClock, GraphFake
from tests.integration.calendar_sync.support import (
    ANNA,
    BO,
    CPH,
    Activity,
    Collector,
    Harness,
    activity_ids,
    customer,
    tagged,
    unique_topics,
)
from tests.support.polling import wait_until


def dead_letters(kafka: KafkaTransport, harness: Harness) -> Collector:
    # Created up front: a consumer that subscribes before the topic exists may not see it
    # appear until its next metadata refresh, minutes later.
    topic = dead_letter_topic(harness.topics.activities)
    ensure_topics(kafka.bootstrap, {topic: 1})
    return Collector(kafka, topic)


def only_event(fake: GraphFake, mailbox: str) -> dict[str, Any]:
    events = tagged(fake, mailbox)
    assert len(events) == 1, events
    return events[0]


def utc(moment: datetime) -> dict[str, str]:
    wall = moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return {"dateTime": wall + "0", "timeZone": "UTC"}


def test_plan_move_retype_complete_leaves_one_event_with_the_final_state(
    harness: Harness, fake: GraphFake
) -> None:
    harness.send(customer("cust-1", "Bageriet Ørsted"))
    wait_until(lambda: harness.service.state.customer_name("cust-1"), message="customer name")
    act = Activity(type=ActivityType.CONTACT, channel=Channel.PHONE)
    harness.send(act.planned())
    first = harness.applied(act)
    assert first.status is SyncStatus.SYNCED
    created = only_event(fake, ANNA)
    assert created["subject"] == "Kontakt: Annonceplan forår – Bageriet Ørsted"
    assert created["transactionId"] == transaction_id_for(ANNA, str(act.id), 1)
    assert created["singleValueExtendedProperties"] == [
        {"id": ACTIVITY_PROPERTY_ID, "value": str(act.id)}
    ]
    assert created["location"]["displayName"] == "Telefon"
    assert (created["isReminderOn"], created["reminderMinutesBeforeStart"]) == (True, 15)
    assert created["body"]["content"] == "Dagsorden:\nKampagner og budget"
    assert created["originalStartTimeZone"] == "Romance Standard Time"

    harness.send(
        act.moved(datetime(2026, 3, 4, 13, 30, tzinfo=CPH)),
        act.retyped(ActivityType.SALES_MEETING, Channel.PHYSICAL),
        act.completed(),
    )
    final = harness.applied(act)
    event = only_event(fake, ANNA)
    assert event["id"] == created["id"] == final.event_id
    assert event["subject"] == "Aftalt salgsmøde: Annonceplan forår – Bageriet Ørsted"
    assert event["categories"] == ["CRM", "Aftalt salgsmøde", "Udført"]
    assert event["start"] == utc(datetime(2026, 3, 4, 13, 30, tzinfo=CPH))
    assert event["end"] == utc(datetime(2026, 3, 4, 14, 30, tzinfo=CPH))
    assert event["location"]["displayName"] == "Hos kunden"
    assert (final.status, final.version, final.change_key) == (
        SyncStatus.SYNCED,
        4,
        event["changeKey"],
    )
    assert len(fake.requests(ANNA, "POST")) == 1


def test_reassigning_moves_the_event_to_the_new_owners_calendar_only(
    harness: Harness, fake: GraphFake
) -> None:
    act = Activity()
    harness.send(act.planned())
    harness.applied(act)
    harness.send(act.reassigned(BO))
    record = harness.applied(act)
    # Created in Bo's calendar first; Anna's lane then removes the one left in hers.
    wait_until(lambda: tagged(fake, ANNA) == [], message="Anna's copy removed")
    event = only_event(fake, BO)
    assert (record.mailbox, record.event_id) == (BO, event["id"])
    assert activity_ids([event]) == [str(act.id)]


def test_cancelling_removes_the_event(harness: Harness, fake: GraphFake) -> None:
    act = Activity()
    harness.send(act.planned())
    harness.applied(act)
    harness.send(act.cancelled())
    record = harness.applied(act)
    assert (record.status, record.event_id) == (SyncStatus.REMOVED, None)
    assert fake.events(ANNA) == []


def test_in_mark_mode_a_cancelled_event_stays_marked_and_free(
    kafka: KafkaTransport,
    topic_factory: Any,
    store: StoreLocation,
    fake: GraphFake,
    tmp_path: Path,
) -> None:
    options = CalendarSyncSettings(cancel_mode=CancelMode.MARK)
    harness = Harness.build(
        kafka, unique_topics(topic_factory), store, tmp_path, fake=fake, options=options
    ).start()
    try:
        act = Activity()
        harness.send(act.planned(), act.cancelled())
        assert harness.applied(act).status is SyncStatus.SYNCED
        event = only_event(fake, ANNA)
        assert event["subject"] == "Aflyst: Statusmøde: Annonceplan forår – cust-1"
        assert event["categories"] == ["CRM", "Statusmøde", "Aflyst"]
        assert event["showAs"] == "free"
    finally:
        harness.close()


def test_the_customer_id_stands_in_until_the_name_arrives_then_the_subject_is_fixed(
    harness: Harness, fake: GraphFake
) -> None:
    act = Activity(customer_id="cust-late")
    harness.send(act.planned())
    harness.applied(act)
    assert only_event(fake, ANNA)["subject"] == "Statusmøde: Annonceplan forår – cust-late"
    harness.send(customer("cust-late", "Tømrer Hansen ApS"))
    wait_until(
        lambda: only_event(fake, ANNA)["subject"].endswith("– Tømrer Hansen ApS"),
        message="subject with the customer's name",
    )
    # The calendar is written first, the row right after (see projector.py): poll for it too.
    wait_until(
        lambda: (r := harness.record(act)) is not None and r.shown_name == "Tømrer Hansen ApS",
        message="the row records the name shown",
    )


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [(datetime(2026, 3, 29), 8), (datetime(2026, 10, 25), 9)],
    ids=["last-sunday-of-march", "last-sunday-of-october"],
)
def test_ten_oclock_copenhagen_lands_at_ten_across_daylight_saving(
    harness: Harness, fake: GraphFake, day: datetime, utc_hour: int
) -> None:
    act = Activity(starts_at=day.replace(hour=10, tzinfo=CPH))
    harness.send(act.planned())
    harness.applied(act)
    event = only_event(fake, ANNA)
    assert event["start"]["dateTime"] == f"{day:%Y-%m-%d}T{utc_hour:02d}:00:00.0000000"
    assert event["originalStartTimeZone"] == "Romance Standard Time"


def test_an_event_deleted_in_outlook_is_not_recreated_by_a_later_move(
    harness: Harness, fake: GraphFake
) -> None:
    act = Activity()
    harness.send(act.planned())
    event_id = harness.applied(act).event_id
    assert event_id is not None
    fake.delete_as_user(ANNA, event_id)
    harness.send(act.moved(act.starts_at + timedelta(days=1)))
    record = harness.applied(act)
    assert record.status is SyncStatus.DELETED_IN_OUTLOOK
    harness.send(act.retyped(ActivityType.PROPOSAL_MEETING), act.completed())
    assert harness.applied(act).status is SyncStatus.DELETED_IN_OUTLOOK
    assert fake.events(ANNA) == []
    assert len(fake.requests(ANNA, "POST")) == 1


def test_a_repeated_or_stale_event_has_no_second_effect_and_registrations_are_ignored(
    harness: Harness, fake: GraphFake
) -> None:
    act = Activity()
    planned = act.planned()
    moved = act.moved(act.starts_at + timedelta(hours=2))
    # A relay that published twice: the same versions again at later offsets.
    harness.send(planned, moved, planned, moved)
    harness.applied(act)
    done = harness.service.metrics.applied
    wait_until(
        lambda: done.labels("ActivityMoved", "stale")._value.get() == 1,
        message="the repeated move counted as stale",
    )
    assert len(tagged(fake, ANNA)) == 1
    assert only_event(fake, ANNA)["start"] == utc(act.starts_at)
    # One create; the move is written at most once (not at all when the lane found both
    # versions due together and created the moved one).
    assert len([r for r in fake.requests(ANNA, "POST") if r.status == 201]) == 1
    assert len([r for r in fake.requests(ANNA, "PATCH") if r.status == 200]) <= 1


def test_status_changes_are_relayed_on_the_sync_topic(
    harness: Harness, fake: GraphFake, kafka: KafkaTransport
) -> None:
    collector = Collector(kafka, harness.topics.status)
    try:
        act = Activity()
        harness.send(act.planned(), act.cancelled())
        harness.applied(act)

        def statuses() -> list[CalendarSyncStatus]:
            found = [m for m in collector.decoded() if str(m.activity_id) == str(act.id)]
            return found if found and found[-1].status is SyncStatus.REMOVED else []

        last = wait_until(statuses, timeout=30, message="status removed relayed")[-1]
        assert last.activity_version == 2
        assert last.mailbox == ANNA
        assert last.outlook_event_id is None
    finally:
        collector.close()


def test_a_poison_message_is_dead_lettered_and_the_next_one_applied(
    harness: Harness, fake: GraphFake, kafka: KafkaTransport
) -> None:
    dlq = dead_letters(kafka, harness)
    try:
        act = Activity()
        good = harness.wire(act.planned())
        garbage = WireMessage(good.topic, good.key, b"{not json", good.headers)
        publisher = kafka.publisher()
        publisher.publish([garbage, good])
        publisher.close()
        assert harness.applied(act).status is SyncStatus.SYNCED
        dead = wait_until(lambda: dlq.messages, timeout=30, message="dead letter")
        assert b"InvalidMessage" in (dead[0].header("dlq_reason") or b"")
    finally:
        dlq.close()


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("invalid_user", "ErrorInvalidUser"),
        ("not_enabled", "MailboxNotEnabledForRESTAPI"),
        ("access_denied", "ErrorAccessDenied"),
    ],
)
def test_a_mailbox_that_refuses_us_waits_for_its_administrator_and_is_never_deleted(
    kafka: KafkaTransport,
    topic_factory: Any,
    store: StoreLocation,
    tmp_path: Path,
    kind: Literal["invalid_user", "not_enabled", "access_denied"],
    code: str,
) -> None:
    # Minutes of the slow schedule pass in milliseconds on the fake's clock.
    with GraphFake(clock=FakeClock(scale=2000)) as fake:
        fake.faults.retry_after = "0.01"
        harness = Harness.build(kafka, unique_topics(topic_factory), store, tmp_path, fake=fake)
        dlq = dead_letters(kafka, harness)
        harness.start()
        try:
            known = Activity()
            harness.send(known.planned())
            event_id = harness.applied(known).event_id
            fake.mailbox_unavailable(ANNA, kind)
            new = Activity()
            harness.send(known.moved(known.starts_at + timedelta(days=1)), new.planned())

            def waiting() -> bool:
                rows = [harness.record(a) for a in (known, new)]
                return all(
                    r is not None and r.status is SyncStatus.MAILBOX_UNAVAILABLE for r in rows
                )

            wait_until(waiting, message="both activities waiting for the mailbox")
            record = harness.record(known)
            assert record is not None
            assert (record.error, record.event_id) == (code, event_id)
            troubled = wait_until(  # the rows are marked first, the lane released right after
                lambda: (m := harness.service.state.mailbox(ANNA)) is not None and m.code and m,
                message="the mailbox paused as unavailable",
            )
            assert (troubled.reason, troubled.code) == ("unavailable", code)
            metrics = harness.service.metrics.registry
            gauge = "crm_calendar_sync_mailboxes_unavailable"
            assert metrics.get_sample_value(gauge, {"code": code}) == 1
            # Looked at again on the slow schedule, never given up on, never dead-lettered.
            wait_until(
                lambda: (m := harness.service.state.mailbox(ANNA)) is not None and m.checks >= 3,
                message="three slow looks",
            )
            assert harness.record(known).status is SyncStatus.MAILBOX_UNAVAILABLE  # type: ignore[union-attr]
            assert dlq.messages == []

            fake.mailbox_available(ANNA)
            synced = harness.applied(known, timeout=30)
            assert (synced.status, synced.event_id, synced.error) == (
                SyncStatus.SYNCED,
                event_id,
                None,
            )
            assert harness.applied(new).status is SyncStatus.SYNCED
            assert activity_ids(tagged(fake, ANNA)) == [str(known.id), str(new.id)]
            assert only_start(fake, known) == utc(known.starts_at)
            wait_until(  # the lane is released, back to work, right after its last write
                lambda: metrics.get_sample_value(gauge, {"code": code}) is None,
                message="no mailbox unavailable any more",
            )
        finally:
            dlq.close()
            harness.close()


def test_an_entry_graph_refuses_for_good_is_failed_and_parked_and_retried_by_an_operator(
    harness: Harness, fake: GraphFake, kafka: KafkaTransport
) -> None:
    dlq = dead_letters(kafka, harness)
    try:
        act = Activity()
        fake.faults.fail_next("refuse", method="POST")
        harness.send(act.planned())
        failed = wait_until(
            lambda: (r := harness.record(act)) is not None and r.status is SyncStatus.FAILED and r,
            message="the refusal recorded",
        )
        assert failed.error is not None
        assert "ErrorInvalidRequest" in failed.error
        parked = wait_until(
            lambda: harness.service.parking.entries(worker=LANES_WORKER), message="parked"
        )[0]
        assert parked.subject == str(act.id)
        later = Activity()
        harness.send(later.planned())
        assert harness.applied(later).status is SyncStatus.SYNCED  # the lane goes on
        harness.service.parking.request_retry(parked.id)
        wait_until(
            lambda: (r := harness.record(act)) is not None and r.status is SyncStatus.SYNCED,
            message="synced after the operator's retry",
        )
        assert harness.service.parking.entries(worker=LANES_WORKER) == []
        assert dlq.messages == []
        assert len(tagged(fake, ANNA)) == 2
    finally:
        dlq.close()


def only_start(fake: GraphFake, activity: Activity) -> dict[str, str]:
    (event,) = fake.crm_events(ANNA)[str(activity.id)]
    return dict(event["start"])
