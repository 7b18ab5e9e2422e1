"""Exactly-once commands under an `Idempotency-Key`, kept in the event store itself.

The record is an aggregate whose id derives from (caller, key) and is saved in the same
transaction as the command's events. A retried request finds it and gets the first outcome
again; two racing requests with one key cannot both save, since the record's first version
can be written once. No separate table can drift from the events.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from crm_platform.errors import Forbidden, LostRace, StaleVersion
from crm_platform.outages import TRANSIENT_ERRORS

# Refusals a key never turns into a replay (see `idempotent`).
NEVER_REPLAYED: tuple[type[Exception], ...] = (Forbidden, *TRANSIENT_ERRORS)

A = TypeVar("A")
O = TypeVar("O")  # noqa: E741
P = ParamSpec("P")

_NAMESPACE = uuid.UUID("0b5a3d52-7c1e-4f0a-8d8e-4a4f3f7f6c11")
KEY_MAX = 200


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A caller's key plus a fingerprint of what was asked under it."""

    caller: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, caller: str, key: str, *parts: Any) -> IdempotencyKey:
        canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
        return cls(caller, key, hashlib.sha256(canonical.encode()).hexdigest())

    @property
    def record_id(self) -> UUID:
        return uuid.uuid5(_NAMESPACE, f"{self.caller}\x00{self.key}")


class IdempotencyKeyReused(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for a different request")
        self.key = key


class IdempotencyRecord(Aggregate):
    """What a keyed request produced: which resource, at which version, with which status."""

    class Recorded(Aggregate.Created):
        caller: str
        key: str
        fingerprint: str
        resource_id: UUID
        resource_version: int
        status: int

    def __init__(
        self,
        caller: str,
        key: str,
        fingerprint: str,
        resource_id: UUID,
        resource_version: int,
        status: int,
    ) -> None:
        self.caller = caller
        self.key = key
        self.fingerprint = fingerprint
        self.resource_id = resource_id
        self.resource_version = resource_version
        self.status = status

    @classmethod
    def record(
        cls,
        key: IdempotencyKey,
        resource_id: UUID,
        resource_version: int,
        status: int,
        now: datetime,
    ) -> IdempotencyRecord:
        return cls._create(
            cls.Recorded,
            id=key.record_id,
            timestamp=now,
            caller=key.caller,
            key=key.key,
            fingerprint=key.fingerprint,
            resource_id=resource_id,
            resource_version=resource_version,
            status=status,
        )

    def check(self, key: IdempotencyKey) -> None:
        if key.fingerprint != self.fingerprint:
            raise IdempotencyKeyReused(key.key)


def keyed(
    items: list[Aggregate],
    key: IdempotencyKey | None,
    resource: Aggregate,
    status: int,
    now: datetime,
) -> list[Aggregate]:
    """The aggregates a command saves, plus its key's record when it runs under one."""
    if key is None:
        return items
    return [*items, IdempotencyRecord.record(key, resource.id, resource.version, status, now)]


def first_outcome(repository: Any, key: IdempotencyKey | None) -> tuple[Any, int] | None:
    """The resource (at the version it had) and status a key's first request produced, or None
    if the key is new. Raises IdempotencyKeyReused for a different request under the key."""
    if key is None:
        return None
    try:
        record = repository.get(key.record_id)
    except AggregateNotFoundError:
        return None
    if not isinstance(record, IdempotencyRecord):
        return None
    record.check(key)
    return repository.get(record.resource_id, version=record.resource_version), record.status


def require_version(aggregate: Aggregate, expected_version: int | None, what: str) -> None:
    """A conditional command (If-Match) runs only on the version the caller read."""
    if expected_version is not None and expected_version != aggregate.version:
        raise StaleVersion(
            f"the {what} is at version {aggregate.version}, not {expected_version}; read it again",
            current_version=aggregate.version,
        )


Command = Callable[Concatenate[A, P], O]

LOST_RACE_ATTEMPTS = 3


def retries_lost_races(command: Command[A, P, O]) -> Command[A, P, O]:
    """Runs a command again (up to LOST_RACE_ATTEMPTS times) when its save lost an optimistic
    race: nothing was written, and the command reads everything afresh, so it judges the new
    state (an If-Match that no longer holds is refused then, as it should be). A background
    worker touching the same aggregate (e.g. a customer's file) thus costs a client nothing."""

    @functools.wraps(command)
    def run(self: A, /, *args: P.args, **kwargs: P.kwargs) -> O:
        for _ in range(LOST_RACE_ATTEMPTS - 1):
            try:
                return command(self, *args, **kwargs)
            except LostRace:
                continue
        return command(self, *args, **kwargs)

    return run


def replayed_by(method: str) -> Callable[[Command[A, P, O]], Command[A, P, O]]:
    """`idempotent`, for a command whose first outcome the application's `method` gives back."""

    def decorate(command: Command[A, P, O]) -> Command[A, P, O]:
        return _idempotent(command, method)

    return decorate


def idempotent(command: Command[A, P, O]) -> Command[A, P, O]:
    """Replays an earlier outcome (the application's `_replay(key)`); see `_idempotent`."""
    return _idempotent(command, "_replay")


def _idempotent(command: Command[A, P, O], method: str) -> Command[A, P, O]:
    """Replays an earlier outcome under the same Idempotency-Key, looking only when needed.

    The command (whose key is its keyword argument `idempotency`) runs first, without a
    look-up. If the key is new, the command's save includes the key's record (whose id derives
    from caller and key, at version 1) and commits. If the key was used before, that record
    exists, so the command cannot commit: it is refused on the way (the first run already
    changed the resource: a stale If-Match, already completed, …) or its save conflicts on the
    record. Both paths then look the record up and answer as a pre-check would have: the first
    outcome, or IdempotencyKeyReused for a different request. So the record is read only on a
    repeat (measured faster than a look-up before every keyed command). Two refusals are never
    turned into a replay: Forbidden (a key never lets a caller past what they may do now) and
    an outage (the look-up would only wait out the same outage again).
    """

    @functools.wraps(command)
    def run(self: A, /, *args: P.args, **kwargs: P.kwargs) -> O:
        key = kwargs.get("idempotency")
        if key is None:
            return command(self, *args, **kwargs)
        assert isinstance(key, IdempotencyKey)
        try:
            return command(self, *args, **kwargs)
        except NEVER_REPLAYED:
            raise
        except Exception:
            # A repeat's refusal is not an answer: the first outcome (or the key's reuse) is.
            replay: O | None = getattr(self, method)(key)
            if replay is not None:
                return replay
            raise

    return run
