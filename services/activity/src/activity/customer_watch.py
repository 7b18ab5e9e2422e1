"""The R8 watch: opens and closes R8 gaps as the clock and the customer registry move.

Commands keep R8 themselves (they refuse to leave a prioritized customer without a future
activity, and a plan closes a gap in its own save). What no command does is let time pass
(a customer's last planned activity becomes overdue) or change a customer's segment (new
potential, agreement, programme, import). The watch looks for such customers in the read
model and the directory, and lets each customer's file decide (`watch_future_activity`),
at once when the directory says a customer changed, and every `interval` seconds besides.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Final

from crm_platform.actors import Clock
from crm_platform.auth import Principal, Role
from crm_platform.follower import Waker

from activity.application import ActivityApplication
from activity.read_queries import ActivityQueries

log = logging.getLogger(__name__)

WATCH_INTERVAL: Final = 60.0  # seconds: an overdue activity is seen within a minute
SERVICE_ACTOR: Final = Principal(
    user_id="activity", display_name="Activity service (R8 watch)", roles=frozenset({Role.SERVICE})
)


class FutureActivityWatch:
    def __init__(self, app: ActivityApplication, queries: ActivityQueries, clock: Clock) -> None:
        self.app = app
        self.queries = queries
        self.clock = clock

    def look(self, now: datetime | None = None) -> int:
        """One look at every candidate; how many gaps opened or closed."""
        changed = 0
        for customer_id in self.queries.gap_candidates(now or self.clock()):
            if self.app.watch_future_activity(customer_id, SERVICE_ACTOR):
                changed += 1
        return changed

    def run(self, stop: threading.Event, waker: Waker, interval: float = WATCH_INTERVAL) -> None:
        def wake_on_stop() -> None:
            stop.wait()
            waker.notify()

        threading.Thread(target=wake_on_stop, name="activity-r8-watch-stop", daemon=True).start()
        while not stop.is_set():
            try:
                changed = self.look()
                if changed:
                    log.info("R8 watch: %d gaps opened or closed", changed)
            except Exception:
                log.exception("R8 watch failed; looking again in %.0f s", interval)
            waker.wait(interval)
