"""A new policy recomputes every customer as a background job, on SQLite and PostgreSQL.

10,000 customers; the expected changes are computed here independently of the service (plain
comparisons against the thresholds), then compared with the SegmentChanged events per
customer in the notification log before and after, including after a crash and a re-run.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from crm_contracts.enums import Segment
from segmentation.application import NewCustomer, SegmentationApplication
from segmentation.domain import Customer
from segmentation.policy import DEFAULT_POLICY, Policy, parse_policy
from segmentation.recompute import DONE, RUNNING, SUPERSEDED, Recomputation
from segmentation.recompute_worker import RecomputeRunner

from tests.support.clock import ManualClock
from tests.support.people import MIA, SERVICE

N = 10_000
AGREEMENTS = 25
SPECIAL = [
    "0", "44999.99", "45000", "49999.99", "50000", "139999.99", "140000", "159999.99",
    "160000", "349999.99", "350000", "389999.99", "390000", "1000000000",
]  # fmt: skip
CountEvents = Callable[..., Counter[UUID]]  # the `count_events` fixture
NEW_THRESHOLDS = {"A": "350000.00", "B": "160000.00", "C": "50000.00"}


def potential(i: int) -> Decimal | None:
    if i % 50 == 0:
        return None  # never assessed: unsegmented under any policy
    if i % 50 == 1:
        return Decimal(SPECIAL[(i // 50) % len(SPECIAL)])
    return Decimal(i * 7919 % 60_000_000) / 100  # spread over 0 .. 599,999.99


def expected_segment(amount: Decimal | None, thresholds: dict[str, str]) -> str:
    if amount is None:
        return "unsegmented"
    for segment in ("A", "B", "C"):
        if amount >= Decimal(thresholds[segment]):
            return segment
    return "D"


def new_policy(**changes: Any) -> dict[str, Any]:
    data = DEFAULT_POLICY.to_json()
    data.update(thresholds=NEW_THRESHOLDS, prioritized=["annual_agreement", "A"])
    data.update(changes)
    return data


def populate(app: SegmentationApplication, clock: ManualClock) -> None:
    for start in range(0, N, 1000):
        app.register_customers(
            SERVICE,
            [
                NewCustomer(name=f"Kunde {i}", customer_id=f"c-{i}", potential=potential(i))
                for i in range(start, start + 1000)
            ],
        )
    for i in range(2, 2 + AGREEMENTS):  # in annual_agreement under both policies
        app.start_agreement(MIA, f"c-{i}", starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))


class Crash(BaseException):
    """The process dies: nothing in the runner may catch it."""


def test_a_policy_change_over_10000_customers_emits_exactly_the_expected_changes(
    app: SegmentationApplication, clock: ManualClock, count_events: CountEvents
) -> None:
    populate(app, clock)
    old = {
        t: f"{v:.2f}"
        for t, v in ((s.value, DEFAULT_POLICY.thresholds[s]) for s in DEFAULT_POLICY.thresholds)
    }
    agreement = {Customer.id_for(f"c-{i}") for i in range(2, 2 + AGREEMENTS)}
    moving, losing_priority = set(), set()
    for i in range(N):
        cid = Customer.id_for(f"c-{i}")
        before, after = (
            expected_segment(potential(i), old),
            expected_segment(potential(i), NEW_THRESHOLDS),
        )
        if cid in agreement:
            continue
        if before != after:
            moving.add(cid)
        elif before == "B":
            losing_priority.add(cid)  # B stays B but is no longer prioritized
    assert len(moving) > 500  # the data really exercises the change
    changes_before = count_events()
    flags_before = count_events(Customer.PrioritizedChanged)
    clock.advance(days=1)

    adopted = app.set_policy(MIA, new_policy())
    job_id = adopted.recomputation.id
    assert (adopted.policy.version, adopted.recomputation.state) == (2, "queued")
    assert adopted.recomputation.total == N

    # Crash in the middle of the run: after the start and three batches were committed.
    saves, real_save = 0, app.save

    def crashing_save(*objs: Any, **kwargs: Any) -> Any:
        nonlocal saves
        if any(isinstance(o, Recomputation) for o in objs):
            saves += 1
            if saves == 5:
                raise Crash
        return real_save(*objs, **kwargs)

    app.save = crashing_save
    with pytest.raises(Crash):
        RecomputeRunner(app, batch_size=500).run(job_id)
    app.save = real_save
    crashed = app.recomputation(job_id)
    assert (crashed.state, crashed.done, crashed.total) == (RUNNING, 1500, N)

    # A new runner (a restarted process) resumes after the last committed batch.
    job = RecomputeRunner(app, batch_size=500).run(job_id)
    assert (job.state, job.done, job.total) == (DONE, N, N)
    assert job.started_at is not None
    assert job.finished_at is not None

    changes_after = count_events()
    new_changes = changes_after - changes_before
    assert set(new_changes) == moving
    assert set(new_changes.values()) == {1}
    new_flags = count_events(Customer.PrioritizedChanged) - flags_before
    assert set(new_flags) == losing_priority
    assert job.changed == len(moving) + len(losing_priority)

    # The SegmentChanged events carry the policy, the reason, the actor and the day.
    sample = next(iter(moving))
    last = [e for e in app.events.get(sample) if isinstance(e, Customer.SegmentChanged)][-1]
    assert (last.reason, last.policy_version, last.actor) == ("policy_changed", 2, MIA.user_id)
    assert last.effective_on == date(2026, 3, 3)

    # Running it again (or the worker finding nothing pending) records nothing at all.
    end = app.recorder.max_notification_id()
    again = RecomputeRunner(app, batch_size=500).run(job_id)
    assert again.state == DONE
    assert RecomputeRunner(app).run_pending() == []
    assert app.recorder.max_notification_id() == end

    # Every customer now has the segment the new policy gives it.
    for i in range(0, N, 97):
        view = app.customer(f"c-{i}")
        if Customer.id_for(f"c-{i}") not in agreement:
            assert view.segment == expected_segment(potential(i), NEW_THRESHOLDS)
        assert view.prioritized == (view.segment in {"annual_agreement", "A"})
        assert view.policy_version == 2


def test_a_policy_that_changes_only_targets_changes_no_customer(
    app: SegmentationApplication, runner: RecomputeRunner, count_events: CountEvents
) -> None:
    app.register_customers(
        SERVICE, [NewCustomer(name=f"K{i}", potential=Decimal(i * 1000)) for i in range(600)]
    )
    before = count_events()
    data = DEFAULT_POLICY.to_json()
    data["targets"]["B"]["status_meeting"] = {"min": 3, "max": 4}
    job = runner.run(app.set_policy(MIA, data).recomputation.id)
    assert (job.state, job.done, job.changed) == (DONE, 600, 0)
    assert count_events() == before


def test_the_sql_prefilter_agrees_with_the_policy(
    app: SegmentationApplication, clock: ManualClock
) -> None:
    """The registry's SQL (which customers may change) against Policy.segment_for, at every
    threshold edge and agreement edge, for several policies and days; and the snapshots it
    returns against the customers replayed from their events."""
    amounts = [None, *SPECIAL, "44999.98", "45000.01", "160000.01", "390000.01", "12.34"]
    customers = [
        NewCustomer(name=f"K{i}", customer_id=f"k-{i}", potential=None if a is None else Decimal(a))
        for i, a in enumerate(amounts)
    ]
    app.register_customers(MIA, customers)
    spans = [(date(2026, 3, 2), date(2026, 3, 2)), (date(2026, 3, 3), date(2026, 6, 30)),
             (date(2026, 1, 1), date(2026, 3, 2))]  # fmt: skip
    for n, (starts, ends) in enumerate(spans):
        app.start_agreement(MIA, f"k-{n}", starts_on=starts, ends_on=ends)
        app.start_agreement(MIA, f"k-{n + 5}", starts_on=starts, ends_on=ends)
    policies = [
        DEFAULT_POLICY,
        parse_policy(new_policy(), version=2),
        parse_policy(
            new_policy(thresholds={"A": "45000", "B": "44999.99", "C": "0.01"}, prioritized=[]),
            version=3,
        ),
        parse_policy(new_policy(prioritized=["unsegmented", "D", "C"]), version=4),
    ]
    rows = app.registry.registry_rows(after=0, stop=None, limit=1000)
    loaded = {c.id: c for c in app.load_customers([r.id for r in rows])}
    for policy in policies:
        for day in (date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3), date(2026, 7, 1)):
            expected = [r.id for r in rows if would_change(loaded[r.id], policy, day)]
            found = app.registry.changed_between(
                after=0, upto=rows[-1].seq, policy=policy, today=day
            )
            assert [f.id for f in found] == expected, (policy.version, day)
            # The snapshot in the registry row is exactly the customer its events give.
            for restored in app.restore_customers(found):
                assert restored == loaded[restored.id]


def would_change(customer: Customer, policy: Policy, day: date) -> bool:
    target = policy.segment_for(customer.potential, customer.agreement_active_on(day))
    return target.value != customer.segment or policy.is_prioritized(target) != customer.prioritized


def test_a_newer_policy_supersedes_the_running_recomputation(
    app: SegmentationApplication, runner: RecomputeRunner, count_events: CountEvents
) -> None:
    app.register_customers(
        SERVICE, [NewCustomer(name=f"K{i}", potential=Decimal(i * 250)) for i in range(2000)]
    )
    first = app.set_policy(MIA, new_policy()).recomputation.id
    second = app.set_policy(
        MIA, new_policy(thresholds={"A": "300000", "B": "100000", "C": "30000"})
    )
    assert app.recomputation(first).state == SUPERSEDED
    assert app.recomputation(first).superseded_by == second.recomputation.id
    assert runner.run(first).state == SUPERSEDED  # nothing to do
    job = runner.run(second.recomputation.id)
    assert job.state == DONE
    # Customers went straight to version 3's segments: at most one change each.
    assert set(count_events().values()) <= {1, 2}  # the assessment's + the policy's
    v3 = {"A": "300000", "B": "100000", "C": "30000"}
    for row in app.customers(limit=5000):
        assert row.segment == expected_segment(row.potential, v3)
        assert row.prioritized == (row.segment == "A")
    assert app.policy().recomputation_id == second.recomputation.id


def test_the_worker_runs_what_set_policy_queued(app: SegmentationApplication) -> None:
    app.register_customers(
        SERVICE, [NewCustomer(name=f"K{i}", potential=Decimal(i * 5000)) for i in range(50)]
    )
    job_id = app.set_policy(MIA, new_policy()).recomputation.id
    stop = threading.Event()
    worker = threading.Thread(
        target=RecomputeRunner(app, batch_size=10).run_forever,
        args=(stop,),
        kwargs={"poll_interval": 0.05},
    )
    worker.start()
    try:
        for _ in range(200):
            if app.recomputation(job_id).state == DONE:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        worker.join(5)
    job = app.recomputation(job_id)
    assert (job.state, job.done, job.total) == (DONE, 50, 50)


def test_a_command_racing_a_policy_change_catches_up(
    app: SegmentationApplication, runner: RecomputeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """assess_potential judged by version 1 commits after version 2 and its recomputation:
    after saving it sees version 2 and refreshes the customer under it."""
    app.register_customer(MIA, name="Bager", customer_id="c-race")
    stale = app.current_policy()
    job = runner.run(app.set_policy(MIA, new_policy()).recomputation.id)
    assert job.state == DONE
    calls: Counter[str] = Counter()
    real = app.current_policy

    def first_stale() -> Any:
        calls["n"] += 1
        return stale if calls["n"] == 1 else real()

    monkeypatch.setattr(app, "current_policy", first_stale)
    outcome = app.assess_potential(MIA, "c-race", amount="370000")  # B under v1, A under v2
    changes = [e for e in app.history("c-race") if isinstance(e, Customer.SegmentChanged)]
    assert [(e.to_segment, e.policy_version) for e in changes] == [("B", 1), ("A", 2)]
    assert outcome.customer.segment == Segment.A
    assert outcome.customer.prioritized is True


def test_recomputation_progress_is_visible_while_it_runs(
    app: SegmentationApplication, clock: ManualClock
) -> None:
    app.register_customers(
        SERVICE, [NewCustomer(name=f"K{i}", potential=Decimal(i * 900)) for i in range(1000)]
    )
    job_id = app.set_policy(MIA, new_policy()).recomputation.id
    seen: list[tuple[str, int]] = []
    stop = threading.Event()
    real_save = app.save

    def watching_save(*objs: Any, **kwargs: Any) -> Any:
        result = real_save(*objs, **kwargs)
        job = app.recomputation(job_id)
        seen.append((job.state, job.done))
        if job.done >= 600:
            stop.set()  # a graceful stop: the job stays running, resumable
        return result

    app.save = watching_save
    stopped = RecomputeRunner(app, batch_size=300).run(job_id, stop)
    app.save = real_save
    assert seen[:3] == [("running", 0), ("running", 300), ("running", 600)]
    assert (stopped.state, stopped.done) == (RUNNING, 600)
    clock.advance(minutes=1)
    assert RecomputeRunner(app, batch_size=300).run_pending() == [job_id]
    assert app.recomputation(job_id).done == 1000
    assert app.recomputation(job_id).finished_at == clock.now


def test_a_customer_edited_during_the_recomputation_is_judged_again(
    env: dict[str, str],
    app: SegmentationApplication,
    clock: ManualClock,
    count_events: CountEvents,
) -> None:
    """Someone raises a potential between the runner's load and its save: the batch's save
    fails as a whole, is retried, and the customer ends with the new policy's segment for
    the new potential, with no change recorded twice."""
    app.register_customers(
        SERVICE,
        [
            NewCustomer(name=f"K{i}", customer_id=f"k-{i}", potential=Decimal("380000"))
            for i in range(40)
        ],
    )
    before = count_events()
    job_id = app.set_policy(MIA, new_policy()).recomputation.id  # 380,000: B -> A
    other = SegmentationApplication(env, clock=clock)
    real_load, edited = app.restore_customers, []

    def load_then_edit(ids: Any) -> Any:
        loaded = real_load(ids)
        if not edited:
            edited.append(other.assess_potential(MIA, "k-7", amount="40000").customer)  # -> D
        return loaded

    app.restore_customers = load_then_edit  # type: ignore[method-assign]
    try:
        job = RecomputeRunner(app, batch_size=16).run(job_id)
    finally:
        app.restore_customers = real_load  # type: ignore[method-assign]
        other.close()
    assert (job.state, job.done) == (DONE, 40)
    assert app.customer("k-7").segment == Segment.D
    assert all(app.customer(f"k-{i}").segment == Segment.A for i in range(40) if i != 7)
    assert set((count_events() - before).values()) == {1}


def test_every_registry_row_restores_exactly_the_customer_its_events_give(
    app: SegmentationApplication, clock: ManualClock
) -> None:
    """The row is the snapshot recomputation restores customers from: every attribute of the
    aggregate must survive the round trip, whatever commands it went through."""
    app.register_customer(MIA, name="Bager", customer_id="c-1", cvr="12345678", owner="anna@x.dk")
    app.register_customer(MIA, name="Tom", customer_id="c-2")
    app.rename(MIA, "c-1", name="Bageriet")
    app.change_owner(MIA, "c-1", owner=None)
    app.assess_potential(SERVICE, "c-1", amount="145000.55", source="discovery_meeting",
                         assessed_at=clock.now, note="Afdækning")  # fmt: skip
    app.start_agreement(MIA, "c-1", starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    clock.advance(days=3)
    app.end_agreement(MIA, "c-1", ends_on=date(2026, 6, 30))
    app.set_policy(MIA, new_policy(prioritized=["unsegmented"]))
    RecomputeRunner(app).run(app.policy().recomputation_id)  # type: ignore[arg-type]
    rows = app.registry.registry_rows(after=0, stop=None, limit=10)
    restored = app.restore_customers(rows)
    assert restored == app.load_customers([r.id for r in rows])
    assert restored == [app.customer("c-1").customer, app.customer("c-2").customer]
    assert restored[1].prioritized is True


def test_the_registry_can_be_rebuilt_from_the_events(app: SegmentationApplication) -> None:
    app.register_customers(
        SERVICE,
        [
            NewCustomer(name=f"K{i}", customer_id=f"k-{i}", potential=Decimal(i * 9000))
            for i in range(30)
        ],
    )
    app.start_agreement(MIA, "k-3", starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    before = app.registry.registry_rows(after=0, stop=None, limit=100)
    with app.registry.datastore.transaction(commit=True) as cursor:  # damage it
        cursor.execute(app.registry._statement("UPDATE {t} SET segment = 'D', name = 'x'"))
    assert app.rebuild_registry(batch_size=7) == 30
    assert app.registry.registry_rows(after=0, stop=None, limit=100) == before
    assert app.existing_customer_ids(["k-1", "k-99"]) == {"k-1"}
