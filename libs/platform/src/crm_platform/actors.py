"""Who asks and what time it is: what every application takes from outside itself.

Plain Python (no framework), so applications and domain code may use it. The API hands the
authenticated `crm_platform.auth.Principal` in as the `Actor`; tests fix "now" with a clock
of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Actor", "Clock", "system_clock"]

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC: what is stored; Copenhagen time is only for showing."""
    return datetime.now(UTC)


class Actor(Protocol):
    """Who asks: the authenticated principal (see crm_platform.auth.Principal)."""

    @property
    def user_id(self) -> str: ...

    @property
    def is_manager(self) -> bool: ...

    @property
    def is_service(self) -> bool: ...

    def may_act_for(self, owner: str) -> bool: ...
