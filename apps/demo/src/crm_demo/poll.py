"""Waiting for asynchronous propagation: poll until a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Waited(Generic[T]):
    """The first truthy answer (None when the deadline passed) and how long it took."""

    value: T | None
    seconds: float

    def took(self) -> str:
        return f"{self.seconds:.1f} s"


def poll(
    probe: Callable[[], T | None],
    *,
    deadline_s: float,
    interval_s: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
) -> Waited[T]:
    started = clock()
    # The interval backs off so a slow system is not hammered, yet a fast one answers quickly.
    wait = interval_s
    while True:
        value = probe()
        elapsed = clock() - started
        if value:
            return Waited(value, elapsed)
        if elapsed >= deadline_s:
            return Waited(None, elapsed)
        pause(min(wait, max(0.0, deadline_s - elapsed)))
        wait = min(wait * 1.5, 1.0)
