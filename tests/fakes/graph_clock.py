"""Time as the Graph fake sees it: the wall clock, optionally sped up.

Outlook's throttling speaks in whole seconds, 30 to 300 of them, and its request window is
ten minutes. A test cannot wait that long, so the fake runs on a clock `scale` times faster
than the wall clock, and the service under test is given the same clock (as its pace, see
calendar_sync.lanes.Pace): a `Retry-After: 120` then lasts 120 of the fake's seconds for
both sides, 0.12 s of the test's at scale 1000. Network time is not scaled (requests take
what they take), so only waits that Graph prescribes shrink.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class FakeClock:
    """Wall time since creation, times `scale`; `now()` starts at the real now."""

    def __init__(self, scale: float = 1.0, start: datetime | None = None) -> None:
        if scale <= 0:
            raise ValueError("a clock must move forward")
        self.scale = scale
        self._t0 = time.monotonic()
        self._start = start or datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds of this clock since it was made."""
        return (time.monotonic() - self._t0) * self.scale

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock take on the wall clock."""
        return max(seconds, 0.0) / self.scale

    def sleep(self, seconds: float) -> None:
        time.sleep(self.real_seconds(seconds))

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(self.real_seconds(seconds))
