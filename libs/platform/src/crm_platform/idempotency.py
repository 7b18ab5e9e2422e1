"""Exactly-once commands under an `Idempotency-Key`, kept in the event store itself.

The record is an aggregate whose id derives from (caller, key) and is saved in the same
transaction as the command's events. A retried request finds it and gets the first outcome
again; two racing requests with one key cannot both save, since the record's first version
can be written once. No separate table can drift from the events.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

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
