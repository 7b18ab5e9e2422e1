"""A realistic activity log, made by the real aggregates without going through the API.

Many consultants work many customers at once, so one activity's events lie far apart in the
log: each command picks a new or an open activity at random and changes it the way the
application's command would (the activity and the customer's file together, R7 follow-ups,
R9 proposals, R10 discovery profiles). Every rule the aggregates check is checked here too:
an event only exists if the domain allowed it.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from activity.domain import (
    Activity,
    CompletionRequest,
    CustomerFile,
    PlanRequest,
    RegistrationRequest,
)
from activity.rules import DiscoveryProfile
from crm_contracts.enums import ActivityType, AttachmentKind, Channel, MoveReason
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import StoredEvent

T0 = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
OPEN_TARGET = 0.15  # open activities per customer kept in flight, roughly
PLANNED_TYPES = (
    *(ActivityType.CONTACT,) * 7,
    *(ActivityType.SALES_MEETING,) * 4,
    *(ActivityType.STATUS_MEETING,) * 4,
    *(ActivityType.DISCOVERY_MEETING,) * 2,
    ActivityType.PROPOSAL_MEETING,
)
MEETING_CHANNELS = (Channel.PHYSICAL, Channel.PHYSICAL, Channel.VIDEO, Channel.PHONE)
ACTIVITY_EVENTS: frozenset[type] = frozenset(
    {
        Activity.Planned,
        Activity.Registered,
        Activity.Moved,
        Activity.Retyped,
        Activity.Reassigned,
        Activity.Completed,
        Activity.Cancelled,
        Activity.AttachmentAdded,
    }
)
PROFILE = DiscoveryProfile.from_mapping(
    {
        "business": "Lokal møbelforretning med to butikker",
        "situation": "Annoncerer i printavisen hver anden uge",
        "challenges": "Færre kunder i butikkerne om hverdagen",
        "goals_and_plans": "Åbne webshop i foråret",
        "advertising_needs": "Kampagner online og i print op til sæsonerne",
        "potential_dkk": Decimal("180000"),
        "competitors": "Kædebutikkerne i centeret",
        "strategy": "Kvalitet og rådgivning frem for pris",
        "unique_traits": "Eget snedkerværksted",
    }
)


class ActivityLog:
    """Yields, command by command, the events one save of the application would record."""

    def __init__(self, customers: int, owners: int = 60, seed: int = 8) -> None:
        self.rnd = random.Random(seed)
        self.customers = [f"K{n:07d}" for n in range(customers)]
        self.owners = [f"konsulent{n:02d}@media.dk" for n in range(owners)]
        self.files: dict[str, CustomerFile] = {}
        self.open: list[Activity] = []
        self.now = T0
        self.activity_events = 0

    def commands(self) -> Iterator[list[CanMutateAggregate[uuid.UUID]]]:
        while True:
            self.now += timedelta(seconds=self.rnd.randrange(5, 60))
            changed = self._command()
            events = [e for aggregate in changed for e in aggregate.collect_events()]
            self.activity_events += sum(1 for e in events if type(e) in ACTIVITY_EVENTS)
            yield events

    def _command(self) -> list[Aggregate]:
        rnd = self.rnd
        if len(self.open) < OPEN_TARGET * len(self.customers) or rnd.random() < 0.3:
            if rnd.random() < 0.08:
                return [self._register()]
            activity, file = self._plan(rnd.choice(self.customers))
            return [activity, file]
        at = rnd.randrange(len(self.open))
        activity = self.open[at]
        file = self._file(activity.customer_id)
        roll = rnd.random()
        if roll < 0.28:
            start = max(activity.starts_at, self.now) + timedelta(days=rnd.randrange(1, 8))
            activity.move(
                starts_at=start,
                ends_at=None,
                reason=rnd.choice(list(MoveReason)),
                note=None if rnd.random() < 0.7 else "Kunden var syg",
                actor=activity.owner,
                now=self.now,
            )
            file.schedule(activity.id, start, self.now)
        elif roll < 0.34 and activity.type == ActivityType.CONTACT:
            activity.retype(
                type_=ActivityType.SALES_MEETING,
                channel=Channel.PHYSICAL,
                reason="Kunden ville hellere ses",
                actor=activity.owner,
                now=self.now,
            )
        elif roll < 0.38:
            others = [o for o in self.owners[:8] if o != activity.owner]
            activity.reassign(owner=rnd.choice(others), actor="chef@media.dk", now=self.now)
        elif roll < 0.93:
            return self._complete(activity, file, at)
        else:
            activity.cancel(
                reason="Kunden aflyste", next_activity_id=None, actor=activity.owner, now=self.now
            )
            file.close(activity.id, self.now)
            self._drop(at)
        return [activity, file]

    def _file(self, customer_id: str) -> CustomerFile:
        file = self.files.get(customer_id)
        if file is None:
            file = self.files[customer_id] = CustomerFile.open(customer_id, self.now)
        return file

    def _plan(self, customer_id: str, owner: str | None = None) -> tuple[Activity, CustomerFile]:
        rnd = self.rnd
        type_ = rnd.choice(PLANNED_TYPES)
        channel = Channel.PHONE if type_ is ActivityType.CONTACT else rnd.choice(MEETING_CHANNELS)
        start = self.now + timedelta(days=rnd.randrange(1, 45), hours=rnd.randrange(9))
        request = PlanRequest(
            customer_id=customer_id,
            owner=owner or rnd.choice(self.owners),
            type=type_,
            channel=channel,
            subject=f"{type_.label} om kampagne uge {start.isocalendar().week}",
            starts_at=start,
            ends_at=start + timedelta(minutes=rnd.choice((15, 30, 60, 90))),
            agenda="Gennemgå resultater og næste periode" if rnd.random() < 0.4 else None,
        )
        activity = Activity.plan(
            uuid.uuid4(), request, actor=owner or "konsulent@media.dk", now=self.now
        )
        file = self._file(customer_id)
        file.schedule(activity.id, start, self.now)
        self.open.append(activity)
        return activity, file

    def _register(self) -> Activity:
        rnd = self.rnd
        visit = rnd.random() < 0.5
        request = RegistrationRequest(
            customer_id=rnd.choice(self.customers),
            owner=rnd.choice(self.owners),
            type=ActivityType.UNANNOUNCED_VISIT if visit else ActivityType.CONTACT,
            channel=Channel.PHYSICAL if visit else Channel.PHONE,
            held_at=self.now - timedelta(hours=rnd.randrange(1, 48)),
            note="Kunden overvejer en større kampagne til jul, vil have tilbud på online",
            next_step="Ring igen om en uge",
        )
        return Activity.register(
            uuid.uuid4(),
            request,
            profile=None,
            next_activity_id=None,
            actor="konsulent@media.dk",
            now=self.now,
        )

    def _complete(self, activity: Activity, file: CustomerFile, at: int) -> list[Aggregate]:
        rnd = self.rnd
        if activity.type == ActivityType.PROPOSAL_MEETING and not activity.has_proposal:
            activity.add_attachment(  # R9: the written, binding proposal goes with it
                attachment_id=uuid.uuid4(),
                kind=AttachmentKind.PROPOSAL,
                filename="tilbud.pdf",
                media_type="application/pdf",
                size=rnd.randrange(40_000, 900_000),
                sha256="%064x" % rnd.getrandbits(256),  # noqa: UP031
                uri=f"s3://crm-attachments/{uuid.uuid4()}",
                actor=activity.owner,
                now=self.now,
            )
        discovery = activity.type == ActivityType.DISCOVERY_MEETING
        follow_up = (
            self._plan(activity.customer_id, activity.owner)[0] if rnd.random() < 0.6 else None
        )
        activity.complete(
            CompletionRequest(
                note="Kunden vil gerne have et tilbud på print og online til foråret",
                next_step="Send tilbud inden fredag",
            ),
            profile=PROFILE if discovery else None,  # R10
            next_activity_id=follow_up.id if follow_up else None,
            actor=activity.owner,
            now=self.now,
        )
        file.close(activity.id, self.now)
        if discovery:
            file.record_profile(PROFILE, activity.id, activity.owner, self.now)
        self._drop(at)
        return [activity, file] if follow_up is None else [activity, follow_up, file]

    def _drop(self, at: int) -> None:
        # Order does not matter in the pool: swap with the last, O(1).
        self.open[at] = self.open[-1]
        self.open.pop()


def events(customers: int, count: int, seed: int = 8) -> Iterator[CanMutateAggregate[uuid.UUID]]:
    """`count` domain events in log order, whole commands: the Activity events and, as in
    the service's log, the customer files' events saved with them (about as many)."""
    made = 0
    for batch in ActivityLog(customers, seed=seed).commands():
        yield from batch
        made += len(batch)
        if made >= count:
            return


# -- more of the same, fast: one generated block, replicated for more customers -----------

# An id as the JSON transcoder writes it (uuid.hex), a customer id, a numbered consultant.
_TOKENS = re.compile(rb"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])|K\d{7}|(?<=konsulent)\d\d(?=@)")


@dataclass(frozen=True, slots=True)
class _Template:
    originator: UUID
    version: int
    topic: str
    state: bytes  # %-template: every token a %s
    tokens: tuple[bytes, ...]


def replicate(
    block: Sequence[StoredEvent], replicas: int, customers: int, chunk: int = 200
) -> Iterator[StoredEvent]:
    """`block` again for `replicas` disjoint sets of customers, consultants and activities.

    Replica r is the block with every activity id moved (xor r), customer K… renumbered into
    its own range and consultant NN renamed rNN, interleaved chunk by chunk so the replicas
    work side by side in time, as a sales force `replicas` times bigger would. Encoding by
    template costs a few µs an event, where the aggregates and the mapper cost ~70 µs.
    """
    files = {CustomerFile.id_for(f"K{n:07d}"): n for n in range(customers)}
    templates = [_template(e) for e in block]
    moved: list[dict[bytes, bytes]] = [{} for _ in range(replicas)]
    originators: list[dict[UUID, UUID]] = [{} for _ in range(replicas)]
    for start in range(0, len(templates), chunk):
        part = templates[start : start + chunk]
        for r in range(replicas):
            tokens, ids = moved[r], originators[r]
            for t in part:
                originator = ids.get(t.originator)
                if originator is None:
                    n = files.get(t.originator)
                    originator = ids[t.originator] = (
                        UUID(int=t.originator.int ^ (r << 8))
                        if n is None
                        else CustomerFile.id_for(f"K{r * customers + n:07d}")
                    )
                values = []
                for token in t.tokens:
                    value = tokens.get(token)
                    if value is None:
                        value = tokens[token] = _moved(token, r, customers)
                    values.append(value)
                yield StoredEvent(originator, t.version, t.topic, t.state % tuple(values))


def _template(event: StoredEvent) -> _Template:
    state = event.state.replace(b"%", b"%%")
    tokens = tuple(m.group() for m in _TOKENS.finditer(state))
    originator = event.originator_id
    assert isinstance(originator, UUID)
    return _Template(
        originator, event.originator_version, event.topic, _TOKENS.sub(b"%s", state), tokens
    )


def _moved(token: bytes, r: int, customers: int) -> bytes:
    if r == 0:
        return token
    if len(token) == 32:
        return b"%032x" % (int(token, 16) ^ (r << 8))
    if token[:1] == b"K":
        return b"K%07d" % (r * customers + int(token[1:]))
    return b"%02d%s" % (r, token)
