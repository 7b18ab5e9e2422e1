"""The one mapping between CloudEvents ``type`` strings and contract models.

A type is ``crm.<aggregate>.<event>.v<N>``. The registry tells an unknown event apart from a
known event in a version this build does not have, because the two call for different
fixes (a wrong producer vs. a consumer that must upgrade).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from crm_contracts.activity import ACTIVITY_EVENT_TYPES
from crm_contracts.base import Message
from crm_contracts.calendar_sync import CalendarSyncStatus
from crm_contracts.customer import CustomerSnapshot
from crm_contracts.errors import UnknownEventType, UnsupportedVersion
from crm_contracts.gaps import GAP_EVENT_TYPES

TYPE_PATTERN: Final = re.compile(
    r"^crm\.(?P<aggregate>[a-z][a-z_]*)\.(?P<event>[a-z][a-z_]*)\.v(?P<version>[1-9][0-9]*)$"
)

MESSAGE_TYPES: Final[tuple[type[Message], ...]] = (
    *ACTIVITY_EVENT_TYPES,
    CustomerSnapshot,
    CalendarSyncStatus,
    *GAP_EVENT_TYPES,
)


def split_type(ce_type: str) -> tuple[str, int] | None:
    """``"crm.activity.planned.v1"`` -> ``("crm.activity.planned", 1)``; None if malformed."""
    match = TYPE_PATTERN.match(ce_type)
    if match is None:
        return None
    return ce_type.rsplit(".", 1)[0], int(match["version"])


def _build(models: tuple[type[Message], ...]) -> dict[str, type[Message]]:
    registry: dict[str, type[Message]] = {}
    for model in models:
        ce_type = model.ce_type
        if split_type(ce_type) is None:
            raise ValueError(f"{model.__name__}.ce_type {ce_type!r} is not crm.<agg>.<event>.vN")
        if ce_type in registry:
            raise ValueError(f"{ce_type!r} is declared by two models")
        registry[ce_type] = model
    return registry


REGISTRY: Final[Mapping[str, type[Message]]] = _build(MESSAGE_TYPES)
"""ce_type -> model class, for every message this build can publish or read."""


def model_for(ce_type: str) -> type[Message]:
    """The model for a type string, or ``UnknownEventType`` / ``UnsupportedVersion``."""
    model = REGISTRY.get(ce_type)
    if model is not None:
        return model
    parts = split_type(ce_type)
    if parts is not None:
        supported = tuple(t for t in REGISTRY if t.rsplit(".", 1)[0] == parts[0])
        if supported:
            raise UnsupportedVersion(ce_type, supported)
    raise UnknownEventType(ce_type)


def type_of(message: Message | type[Message]) -> str:
    """The registered type string of a model or instance; refuses unregistered models."""
    model = message if isinstance(message, type) else type(message)
    ce_type: str | None = getattr(model, "ce_type", None)
    if ce_type is None or REGISTRY.get(ce_type) is not model:
        raise TypeError(f"{model.__name__} is not a registered contract message")
    return ce_type
