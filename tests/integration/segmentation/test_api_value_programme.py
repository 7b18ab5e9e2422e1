"""The customer value programme (kundeværdiprogram) over HTTP and through the application, on
SQLite and PostgreSQL: a membership in force puts the customer in `annual_agreement` like an
annual agreement, the daily calendar moves it in and out on its days, it shows on the customer,
its snapshot, its history, the listing and the SQL that finds who a policy or the calendar
changes, and the CSV import takes it.

The clock stands at 2026-03-02 08:00 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from crm_contracts.customer import ValueProgramme as ValueProgrammeMessage
from crm_contracts.enums import Segment
from fastapi.testclient import TestClient
from segmentation.application import NewCustomer, SegmentationApplication
from segmentation.domain import Customer
from segmentation.policy import DEFAULT_POLICY, Policy, parse_policy
from segmentation.recompute_worker import RecomputeRunner
from segmentation.relay import snapshot
from segmentation.rules import ValueProgramme

from tests.integration.segmentation.test_api import ANNA_H, MIA_H, client, events, register
from tests.integration.segmentation.test_application_recompute import new_policy
from tests.integration.segmentation.test_import import post
from tests.support.clock import ManualClock
from tests.support.people import MIA, SERVICE

__all__ = ["client"]  # fixture

PATH = "/customers/c-1/value-programme"


def at(day: date, hour: int = 6) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_a_membership_puts_the_customer_in_annual_agreement_until_it_is_ended(
    client: TestClient, app: SegmentationApplication
) -> None:
    register(client, potential_dkk="50000")

    joined = client.put(PATH, json={"starts_on": "2026-02-01"}, headers=MIA_H)

    assert joined.status_code == 200, joined.json()
    body = joined.json()
    assert (body["segment"], body["segment_label"], body["prioritized"]) == (
        "annual_agreement",
        "Årsaftale",
        True,
    )
    assert body["value_programme"] == {"starts_on": "2026-02-01", "ends_on": None}
    assert body["annual_agreement"] is None
    assert joined.headers["ETag"] == f'"{body["version"]}"'
    assert client.get("/customers/c-1", headers=ANNA_H).json()["value_programme"] == {
        "starts_on": "2026-02-01",
        "ends_on": None,
    }
    listed = client.get("/customers", params={"segment": "annual_agreement"}, headers=ANNA_H)
    assert [c["value_programme"] for c in listed.json()["items"]] == [
        {"starts_on": "2026-02-01", "ends_on": None}
    ]

    ended = client.delete(PATH, headers=MIA_H)

    assert ended.status_code == 200, ended.json()
    assert (ended.json()["segment"], ended.json()["prioritized"]) == ("C", False)
    assert ended.json()["value_programme"] == {"starts_on": "2026-02-01", "ends_on": "2026-03-01"}
    again = client.delete(PATH, headers=MIA_H)
    assert (again.status_code, again.json()["code"]) == (409, "no_value_programme")

    history = client.get("/customers/c-1/history", headers=ANNA_H).json()
    assert [(h["event"], h["why"]) for h in history[-4:]] == [
        ("value_programme_set", None),
        ("segment_changed", "value_programme_started"),
        ("value_programme_ended", None),
        ("segment_changed", "value_programme_ended"),
    ]
    assert history[-4]["details"] == {"starts_on": "2026-02-01", "ends_on": None}
    assert history[-2]["details"] == {"ends_on": "2026-03-01"}


def test_the_published_snapshot_carries_the_membership(
    client: TestClient, app: SegmentationApplication
) -> None:
    register(client)
    client.put(PATH, json={"starts_on": "2026-02-01", "ends_on": "2026-12-31"}, headers=MIA_H)

    published = snapshot(app.customer("c-1").customer)

    assert published.value_programme == ValueProgrammeMessage(
        starts_on=date(2026, 2, 1), ends_on=date(2026, 12, 31)
    )
    assert published.segment is Segment.ANNUAL_AGREEMENT


def test_what_the_programme_refuses(client: TestClient, app: SegmentationApplication) -> None:
    register(client)
    before = events(app)
    backwards = client.put(
        PATH, json={"starts_on": "2026-05-01", "ends_on": "2026-04-30"}, headers=MIA_H
    )
    assert (backwards.status_code, backwards.json()["code"]) == (422, "ends_on")
    over = client.put(
        PATH, json={"starts_on": "2026-01-01", "ends_on": "2026-03-01"}, headers=MIA_H
    )
    assert (over.status_code, over.json()["code"]) == (422, "ends_on")
    missing = client.put(PATH, json={"ends_on": "2026-12-31"}, headers=MIA_H)
    assert (missing.status_code, missing.json()["errors"][0]["field"]) == (422, "body.starts_on")
    unknown = client.put(PATH, json={"starts_on": "2026-02-01", "until": "x"}, headers=MIA_H)
    assert unknown.status_code == 422
    not_a_day = client.put(PATH, json={"starts_on": "2026-02-30"}, headers=MIA_H)
    assert not_a_day.status_code == 422
    consultant = client.put(PATH, json={"starts_on": "2026-02-01"}, headers=ANNA_H)
    assert (consultant.status_code, consultant.json()["code"]) == (403, "forbidden")
    assert client.delete(PATH, headers=ANNA_H).status_code == 403
    nobody = client.put(
        "/customers/nope/value-programme", json={"starts_on": "2026-02-01"}, headers=MIA_H
    )
    assert nobody.status_code == 404
    assert client.delete("/customers/nope/value-programme", headers=MIA_H).status_code == 404
    assert events(app) == before

    assert client.put(PATH, json={"starts_on": "2026-02-01"}, headers=MIA_H).status_code == 200
    same = client.put(PATH, json={"starts_on": "2026-02-01", "ends_on": None}, headers=MIA_H)
    assert (same.status_code, same.json()["code"]) == (409, "value_programme_unchanged")


def test_if_match_and_idempotency_key_as_for_every_customer_command(
    client: TestClient, app: SegmentationApplication
) -> None:
    register(client)
    stale = client.put(PATH, json={"starts_on": "2026-02-01"}, headers={**MIA_H, "If-Match": '"7"'})
    assert (stale.status_code, stale.json()["code"]) == (412, "stale_version")
    keyed = {**MIA_H, "If-Match": '"1"', "Idempotency-Key": "vp-1"}
    first = client.put(PATH, json={"starts_on": "2026-02-01"}, headers=keyed)
    assert first.status_code == 200
    after = events(app)
    again = client.put(PATH, json={"starts_on": "2026-02-01"}, headers=keyed)
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert again.json() == first.json()
    assert events(app) == after
    end_key = {**MIA_H, "Idempotency-Key": "vp-2"}
    assert client.delete(PATH, headers=end_key).status_code == 200
    replayed = client.delete(PATH, headers=end_key)
    assert (replayed.status_code, replayed.headers["Idempotent-Replayed"]) == (200, "true")


def test_the_calendar_moves_customers_in_and_out_on_the_membership_days(
    app: SegmentationApplication, clock: ManualClock
) -> None:
    app.register_customer(MIA, name="Bager", customer_id="c-1")
    app.assess_potential(MIA, "c-1", amount="60000")  # C
    app.set_value_programme(MIA, "c-1", starts_on=date(2026, 3, 10), ends_on=date(2026, 3, 31))
    app.register_customer(MIA, name="Kiosken", customer_id="c-2")
    app.set_value_programme(MIA, "c-2", starts_on=date(2026, 3, 10))  # open-ended
    assert app.customer("c-1").segment == Segment.C  # not in force yet

    clock.now = at(date(2026, 3, 9))
    assert app.apply_calendar(SERVICE).changed == 0
    clock.now = at(date(2026, 3, 10))
    assert app.apply_calendar(SERVICE).changed == 2
    assert app.customer("c-1").segment == Segment.ANNUAL_AGREEMENT
    assert app.customer("c-2").segment == Segment.ANNUAL_AGREEMENT
    assert app.apply_calendar(SERVICE).changed == 0  # idempotent: no change, no event

    clock.now = at(date(2026, 3, 31), hour=21)  # 23:00 in Copenhagen: still the last day
    assert app.apply_calendar(SERVICE).changed == 0
    clock.now = at(date(2026, 4, 2))  # the calendar did not run on 1 April
    assert app.apply_calendar(SERVICE).changed == 1
    assert app.customer("c-1").segment == Segment.C
    assert app.customer("c-2").segment == Segment.ANNUAL_AGREEMENT  # open-ended
    assert app.apply_calendar(SERVICE).changed == 0

    changes = [e for e in app.history("c-1") if isinstance(e, Customer.SegmentChanged)]
    assert [(e.to_segment, e.reason, e.effective_on, e.actor) for e in changes] == [
        ("C", "potential_assessed", date(2026, 3, 2), MIA.user_id),
        ("annual_agreement", "value_programme_started", date(2026, 3, 10), SERVICE.user_id),
        ("C", "value_programme_ended", date(2026, 4, 1), SERVICE.user_id),
    ]


def test_the_registry_sql_agrees_with_the_customers_on_memberships(
    app: SegmentationApplication,
) -> None:
    """Who a policy or the calendar would change, in SQL, against the aggregate's own
    judgement, at the edges of open-ended and ending memberships, beside agreements."""
    amounts = [None, "50000", "390000", None, "10000", "200000", "45000", None]
    app.register_customers(
        MIA,
        [
            NewCustomer(
                name=f"K{i}", customer_id=f"k-{i}", potential=None if a is None else Decimal(a)
            )
            for i, a in enumerate(amounts)
        ],
    )
    spans: list[tuple[date, date | None]] = [
        (date(2026, 3, 2), None),
        (date(2026, 3, 3), None),
        (date(2026, 1, 1), date(2026, 3, 2)),
        (date(2026, 3, 3), date(2026, 6, 30)),
        (date(2026, 1, 1), date(2026, 12, 31)),
    ]
    for n, (starts, ends) in enumerate(spans):
        app.set_value_programme(MIA, f"k-{n}", starts_on=starts, ends_on=ends)
    app.start_agreement(MIA, "k-4", starts_on=date(2026, 1, 1), ends_on=date(2026, 3, 2))
    app.start_agreement(MIA, "k-5", starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 2))
    policies = [
        DEFAULT_POLICY,
        parse_policy(new_policy(prioritized=["unsegmented", "D", "C"]), version=2),
    ]
    rows = app.registry.registry_rows(after=0, stop=None, limit=100)
    loaded = {c.id: c for c in app.load_customers([r.id for r in rows])}
    for policy in policies:
        for day in (date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3), date(2027, 1, 1)):
            expected = [r.id for r in rows if would_change(loaded[r.id], policy, day)]
            found = app.registry.changed_between(
                after=0, upto=rows[-1].seq, policy=policy, today=day
            )
            assert [f.id for f in found] == expected, (policy.version, day)
    for day in (date(2026, 3, 2), date(2026, 3, 3), date(2026, 7, 1), date(2027, 1, 1)):
        moving = {
            r.id
            for r in rows
            if loaded[r.id].in_annual_agreement_on(day)
            != (loaded[r.id].segment == Segment.ANNUAL_AGREEMENT)
        }
        assert {r.id for r in app.registry.calendar_candidates(day)} == moving, day
    # The row is the snapshot recomputations restore customers from.
    assert app.restore_customers(rows) == [loaded[r.id] for r in rows]


def would_change(customer: Customer, policy: Policy, day: date) -> bool:
    target = policy.segment_for(customer.potential, customer.in_annual_agreement_on(day))
    return target.value != customer.segment or policy.is_prioritized(target) != customer.prioritized


def test_the_import_takes_a_membership(client: TestClient, app: SegmentationApplication) -> None:
    header = (
        "customer_id,name,cvr,owner,potential_dkk,annual_agreement_from,annual_agreement_to,"
        "value_programme_starts_on,value_programme_ends_on\n"
    )
    rows = (
        "k-1,Åben,,,50000,,,2026-01-01,\n"  # line 2: open-ended
        "k-2,Lukket,,,50000,,,2026-01-01,2026-06-30\n"  # line 3
        "k-3,Uden,,,50000,,,,\n"  # line 4
        "k-4,Kun slut,,,,,,,2026-06-30\n"  # line 5: no first day
        "k-5,Omvendt,,,,,,2026-06-30,2026-01-01\n"  # line 6
        "k-6,Forbi,,,,,,2025-01-01,2025-12-31\n"  # line 7: over before today
    )

    result = post(client, header + rows)

    assert result.status_code == 200, result.json()
    body = result.json()
    assert body["imported"] == 3
    assert {r["line"]: r["customer_id"] for r in body["rejected"]} == {
        5: "k-4",
        6: "k-5",
        7: "k-6",
    }
    assert app.customer("k-1").customer.value_programme is not None
    assert app.customer("k-1").segment == Segment.ANNUAL_AGREEMENT
    assert app.customer("k-2").customer.value_programme == ValueProgramme(
        date(2026, 1, 1), date(2026, 6, 30)
    )
    assert app.customer("k-3").segment == Segment.C
    before = events(app)
    assert post(client, header + rows).json()["unchanged"] == 3  # a second run: nothing new
    assert events(app) == before

    changed = header + "k-1,Åben,,,50000,,,2026-01-01,2026-12-31\n"
    assert post(client, changed).json()["updated"] == 1
    assert app.customer("k-1").customer.value_programme == ValueProgramme(
        date(2026, 1, 1), date(2026, 12, 31)
    )


def test_without_the_optional_columns_an_import_reads_as_before(
    client: TestClient, app: SegmentationApplication
) -> None:
    header = "customer_id,name,cvr,owner,potential_dkk,annual_agreement_from,annual_agreement_to\n"
    result = post(client, header + "k-1,Bager,,,50000,,\n")
    assert result.json()["imported"] == 1
    assert app.customer("k-1").customer.value_programme is None


def test_a_policy_judges_members_like_agreement_holders(
    client: TestClient, app: SegmentationApplication
) -> None:
    register(client, potential_dkk="50000")
    client.put(PATH, json={"starts_on": "2026-02-01"}, headers=MIA_H)
    policy: dict[str, Any] = client.get("/policy", headers=ANNA_H).json()
    policy["prioritized"] = ["A"]
    assert client.put("/policy", json=policy, headers=MIA_H).status_code == 202
    RecomputeRunner(app).run(app.policy().recomputation_id)  # type: ignore[arg-type]
    customer = client.get("/customers/c-1", headers=ANNA_H).json()
    assert (customer["segment"], customer["prioritized"]) == ("annual_agreement", False)
