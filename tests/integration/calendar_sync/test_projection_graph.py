"""Activity events from the real broker into the Graph fake's calendars, on SQLite and PostgreSQL:
one Outlook event per planned activity, kept in step with moves, retypes, reassignments,
completion and cancellation; deleted-in-Outlook respected; status relayed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from calendar_sync.domain import CancelMode
from calendar_sync.graph import ACTIVITY_PROPERTY_ID, transaction_id_for
from calendar_sync.settings import CalendarSyncSettings
from crm_contracts.calendar_sync import CalendarSyncStatus
from crm_contracts.enums import ActivityType, Channel, SyncStatus
from crm_contracts.wire import WireMessage
from crm_platform.eventstore import StoreLocation
from crm_platform.messaging import dead_letter_topic
from crm_platform.messaging.kafka import ensure_topics
from crm_platform.messaging.transport import KafkaTransport

from tests.fakes import GraphFake
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
    assert tagged(fake, ANNA) == []
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
    patches = [r for r in fake.requests(ANNA, "PATCH") if r.status == 200]
    assert len(patches) == 1


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


def test_a_calendar_that_refuses_for_good_dead_letters_with_the_reason(
    kafka: KafkaTransport,
    topic_factory: Any,
    store: StoreLocation,
    tmp_path: Path,
) -> None:
    with GraphFake(mailboxes={ANNA}) as fake:
        harness = Harness.build(kafka, unique_topics(topic_factory), store, tmp_path, fake=fake)
        dlq = dead_letters(kafka, harness)
        harness.start()
        try:
            stranger = Activity(owner="nobody@example.dk")
            harness.send(stranger.planned())
            dead = wait_until(lambda: dlq.messages, timeout=30, message="dead letter")
            assert b"ErrorInvalidUser" in (dead[0].header("dlq_reason") or b"")
            record = harness.record(stranger)
            assert record is not None
            assert record.status is SyncStatus.FAILED
            assert "ErrorInvalidUser" in (record.error or "")
            later = Activity()
            harness.send(later.planned())
            assert harness.applied(later).status is SyncStatus.SYNCED
        finally:
            dlq.close()
            harness.close()
