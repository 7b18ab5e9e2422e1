"""The services' PostgreSQL recorder saves a command's events in one statement, and keeps
the notification log's promise: ids become visible in order, never one behind another."""

from __future__ import annotations

import threading

from crm_platform.eventsourcing_internals import OneTripRecorder
from crm_platform.eventstore import StoreLocation
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class Counter(Aggregate):
    def __init__(self) -> None:
        self.count = 0

    @event("Counted")
    def count_up(self) -> None:
        self.count += 1


def _app(postgres_dsn: str, pg_schema: str) -> Application[object]:
    location = StoreLocation(postgres_dsn=postgres_dsn, schema=pg_schema, pool_size=6)
    with location.creating():
        return Application(env={**location.env(), "CREATE_TABLE": "y"})


def test_a_save_is_one_call_and_reads_back(postgres_dsn: str, pg_schema: str) -> None:
    app = _app(postgres_dsn, pg_schema)
    try:
        assert isinstance(app.recorder, OneTripRecorder)
        counter = Counter()
        counter.count_up()
        recordings = app.save(counter)

        ids = [r.notification.id for r in recordings]
        assert len(ids) == 2
        assert ids[1] == ids[0] + 1
        assert app.repository.get(counter.id).count == 1
        log = app.recorder.select_notifications(start=None, limit=10)
        assert [n.id for n in log] == ids
    finally:
        app.close()


def test_concurrent_saves_never_show_a_later_reader_an_earlier_id(
    postgres_dsn: str, pg_schema: str
) -> None:
    app = _app(postgres_dsn, pg_schema)
    writers, saves_each = 6, 150
    stop = threading.Event()
    passed_over: list[tuple[int, int]] = []
    seen: list[int] = []

    def write() -> None:
        for _ in range(saves_each):
            counter = Counter()
            counter.count_up()
            app.save(counter)

    def read() -> None:
        # A tailing reader, like the relay: everything after the last id it saw.
        last = 0
        while True:
            done = stop.is_set()
            batch = app.recorder.select_notifications(
                start=last, limit=1000, inclusive_of_start=False
            )
            for notification in batch:
                if notification.id <= last:
                    passed_over.append((notification.id, last))
                last = max(last, notification.id)
                seen.append(notification.id)
            if done and not batch:
                return

    try:
        reader = threading.Thread(target=read)
        reader.start()
        threads = [threading.Thread(target=write) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        reader.join()

        assert passed_over == []
        assert len(seen) == writers * saves_each * 2
        assert seen == sorted(seen)
        assert len(set(seen)) == len(seen)
    finally:
        app.close()
