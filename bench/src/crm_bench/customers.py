"""A million customers as the segmentation service would have stored them, loaded in seconds.

Potentials are log-uniform between 10,000 and 1,500,000 DKK (every segment well filled),
3 % of the customers have no potential yet and 5 % an annual agreement in force. For each
shape (no potential; potential in A–D; the same with an agreement) one prototype customer
goes through the real aggregate (register, assess, start the agreement) and the
application's mapper; every other customer is that prototype with its own id, name, CVR,
owner and amount put into the encoded events and the registry row. Both are COPY-loaded.
"""

from __future__ import annotations

import csv
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from crm_contracts.enums import Segment
from crm_platform.eventstore import StoreLocation
from psycopg import sql
from segmentation.application import SegmentationApplication
from segmentation.domain import Customer
from segmentation.policy import DEFAULT_POLICY, THRESHOLD_SEGMENTS, Policy
from segmentation.registry import COLUMNS, RowValues
from segmentation.rules import PotentialSource, local_date, search_text

from crm_bench import datasets

NO_POTENTIAL, AGREEMENT = 0.03, 0.05
LOW, HIGH = 10_000, 1_500_000  # DKK
# The thresholds raised about 20 %: about one customer in ten changes segment.
NEW_THRESHOLDS: Final = {
    Segment.A: Decimal("470000.00"),
    Segment.B: Decimal("170000.00"),
    Segment.C: Decimal("55000.00"),
}
# Stand-ins in the prototypes, each unmistakable in the encoded events.
_ID, _NAME, _CVR, _OWNER = b"QQQQQQQQ", b"NNNNNNNN", b"99999999", b"oooooooo"
_SAMPLE_AMOUNTS: Final = {
    Segment.A: "777777.77",
    Segment.B: "277777.77",
    Segment.C: "77777.77",
    Segment.D: "17777.77",
}
_DEFAULT_CENTS: Final[list[tuple[Segment, int]]] = [
    (s, int(DEFAULT_POLICY.thresholds[s] * 100)) for s in THRESHOLD_SEGMENTS
]
_PG_TYPES: Final = {
    "id": "uuid",
    "version": "int8",
    "potential_cents": "int8",
    "policy_version": "int8",
    "assessed_at": "timestamptz",
    "created_on": "timestamptz",
    "updated_at": "timestamptz",
    "agreement_starts_on": "date",
    "agreement_ends_on": "date",
    "value_programme_starts_on": "date",
    "value_programme_ends_on": "date",
    "segment_since": "date",
    "prioritized": "bool",
}


def adjusted_policy() -> Policy:
    return Policy(
        version=DEFAULT_POLICY.version,
        thresholds=NEW_THRESHOLDS,
        targets=DEFAULT_POLICY.targets,
        prioritized=DEFAULT_POLICY.prioritized,
    )


@dataclass(frozen=True)
class Prototype:
    topics: list[str]
    versions: list[int]
    states: list[bytes]  # %-templates
    fields: list[tuple[int, ...]]  # per state: which customer field each %s takes
    row: RowValues


class Population:
    """Customer n's id, name, CVR, owner, potential (cents) and shape, reproducibly."""

    def __init__(self, seed: int = 11) -> None:
        self.seed = seed

    def __iter__(self) -> Iterator[tuple[int, int | None, bool]]:
        rnd = random.Random(self.seed)
        span = math.log(HIGH / LOW)
        n = 0
        while True:
            roll = rnd.random()
            cents = None if roll < NO_POTENTIAL else int(LOW * math.exp(rnd.random() * span)) * 100
            yield n, cents, NO_POTENTIAL <= roll < NO_POTENTIAL + AGREEMENT
            n += 1


def identity(n: int) -> tuple[str, str, str, str]:
    return f"C{n:07d}", f"Kunde {n} ApS", f"{10_000_000 + n:08d}", f"konsulent{n % 200:03d}"


def segment_of(cents: int | None) -> Segment:
    """`Policy.segment_for` under the default policy, in cents (a million times)."""
    if cents is None:
        return Segment.UNSEGMENTED
    for segment, lowest in _DEFAULT_CENTS:
        if cents >= lowest:
            return segment
    return Segment.D


def agreement_days(today: date) -> tuple[date, date]:
    return today - timedelta(days=60), today + timedelta(days=300)


def prototypes(
    app: SegmentationApplication, now: datetime
) -> dict[tuple[Segment, bool], Prototype]:
    """Keyed by (segment by potential, has an agreement); UNSEGMENTED for no potential."""
    found: dict[tuple[Segment, bool], Prototype] = {}
    shapes = [(Segment.UNSEGMENTED, False)] + [
        (s, agreement) for s in _SAMPLE_AMOUNTS for agreement in (False, True)
    ]
    starts, ends = agreement_days(local_date(now))
    for segment, agreement in shapes:
        customer = Customer.register(
            customer_id=_ID.decode(),
            name=_NAME.decode(),
            cvr=_CVR.decode(),
            owner=_OWNER.decode() + "@media.dk",
            policy=DEFAULT_POLICY,
            actor="segmentation-service",
            now=now,
        )
        amount = _SAMPLE_AMOUNTS.get(segment)
        if amount is not None:
            customer.assess_potential(
                Decimal(amount),
                assessed_at=now,
                source=PotentialSource.IMPORT,
                note=None,
                policy=DEFAULT_POLICY,
                actor="segmentation-service",
                now=now,
            )
        if agreement:
            customer.start_agreement(
                starts, ends, policy=DEFAULT_POLICY, actor="segmentation-service", now=now
            )
        row = RowValues.of(customer)
        stored = [app.mapper.to_stored_event(e) for e in customer.collect_events()]
        tokens = [_ID, _NAME, _CVR, _OWNER, *([amount.encode()] if amount else [])]
        pattern = re.compile(b"|".join(re.escape(t) for t in tokens))
        states, fields = [], []
        for event in stored:
            state = event.state.replace(b"%", b"%%")
            fields.append(tuple(tokens.index(m.group()) for m in pattern.finditer(state)))
            states.append(pattern.sub(b"%s", state))
        found[(segment, agreement)] = Prototype(
            [e.topic for e in stored], [e.originator_version for e in stored], states, fields, row
        )
    return found


def load(location: StoreLocation, app: SegmentationApplication, count: int) -> None:
    """`count` customers: their events into the events table, their rows into the registry
    (in the same order, so the registry's seq follows registration as the service's does)."""
    protos = prototypes(app, app.clock())
    events_table = datasets.events_table(app)
    registry = app.registry.registry_table.split(".")[-1]
    columns = COLUMNS.split(", ")
    events_copy = sql.SQL(
        "COPY {} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
    ).format(datasets.table(location, events_table))
    rows_copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        datasets.table(location, registry), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    # Two connections, so both COPYs stream side by side in one pass over the customers.
    with (
        datasets.indexes_deferred(location, events_table, registry),
        datasets.connect(location) as events_conn,
        datasets.connect(location) as rows_conn,
        events_conn.cursor().copy(events_copy) as events,
        rows_conn.cursor().copy(rows_copy) as rows,
    ):
        events.set_types(["uuid", "int8", "text", "bytea"])
        rows.set_types([_PG_TYPES.get(c, "text") for c in columns])
        for n, cents, agreement in _take(Population(), count):
            segment = segment_of(cents)
            proto = protos[(segment, agreement)]
            customer_id, name, cvr, owner = identity(n)
            amount = b"" if cents is None else b"%d.%02d" % divmod(cents, 100)
            values = (customer_id.encode(), name.encode(), cvr.encode(), owner.encode(), amount)
            aggregate_id = Customer.id_for(customer_id)
            for topic, version, state, fields in zip(
                proto.topics, proto.versions, proto.states, proto.fields, strict=True
            ):
                events.write_row(
                    (aggregate_id, version, topic, state % tuple(values[f] for f in fields))
                )
            row = replace(
                proto.row,
                id=aggregate_id,
                customer_id=customer_id,
                name=name,
                cvr=cvr,
                owner=owner + "@media.dk",
                potential_cents=cents,
                search_name=search_text(name),
            )
            rows.write_row(_row_values(row, columns))


def _row_values(row: RowValues, columns: list[str]) -> tuple[Any, ...]:
    return tuple(getattr(row, c) for c in columns)


def _take(population: Population, count: int) -> Iterator[tuple[int, int | None, bool]]:
    for item in population:
        if item[0] >= count:
            return
        yield item


def write_csv(path: Path, count: int, today: date, seed: int = 12) -> None:
    """An import file of `count` new customers, the columns imports.py documents."""
    starts, ends = agreement_days(today)
    with path.open("w", encoding="utf-8", newline="") as file:
        out = csv.writer(file)
        out.writerow(
            [
                "customer_id",
                "name",
                "cvr",
                "owner",
                "potential_dkk",
                "annual_agreement_from",
                "annual_agreement_to",
            ]
        )
        for n, cents, agreement in _take(Population(seed), count):
            customer_id, name, cvr, owner = identity(n)
            out.writerow(
                [
                    customer_id,
                    name,
                    cvr,
                    owner + "@media.dk",
                    "" if cents is None else "%d.%02d" % divmod(cents, 100),  # noqa: UP031
                    starts.isoformat() if agreement else "",
                    ends.isoformat() if agreement else "",
                ]
            )


def check_loaded(app: SegmentationApplication, count: int) -> None:
    """A few customers from their events equal the same from their registry rows: the
    templated load wrote what the service would have."""
    for n in (0, count // 3, count - 1):
        customer_id = identity(n)[0]
        from_events: Customer = app.repository.get(Customer.id_for(customer_id))
        row = app.registry.registry_row(customer_id)
        if row is None or vars(row.restore()) != vars(from_events):
            raise RuntimeError(f"customer {customer_id}: events and registry row disagree")
