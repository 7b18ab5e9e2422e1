"""The customer watch: what follows from time passing and the registry changing.

Commands keep the rules themselves: they refuse to leave a prioritized customer without a
future activity, and a plan closes an R8 gap in its own save. What no command does is let
time pass (a customer's last planned activity becomes overdue) or change a customer (a new
segment from potential, agreement, programme or import; a new consultant). The watch looks
for such customers in the read model and the directory and
- lets each one's file open or close its R8 gap (`watch_future_activity`);
- moves the open activities of a customer that got a new consultant to that consultant
  (`follow_owner`), then marks the directory, so a crash in between only repeats the look.

It looks at once when the directory says a customer changed, and every `interval` besides.
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
from activity.consumers import CustomerDirectory
from activity.read_queries import ActivityQueries

log = logging.getLogger(__name__)

WATCH_INTERVAL: Final = 60.0  # seconds: an overdue activity is seen within a minute
SERVICE_ACTOR: Final = Principal(
    user_id="activity", display_name="Activity service", roles=frozenset({Role.SERVICE})
)


class CustomerWatch:
    def __init__(
        self,
        app: ActivityApplication,
        queries: ActivityQueries,
        directory: CustomerDirectory,
        clock: Clock,
    ) -> None:
        self.app = app
        self.queries = queries
        self.directory = directory
        self.clock = clock

    def look(self, now: datetime | None = None) -> int:
        """One look at every candidate; how many changes it saved."""
        changed = 0
        for customer_id, old, new in self.directory.owner_changes():
            try:
                changed += self.app.follow_owner(customer_id, old, new, SERVICE_ACTOR)
            except Exception:
                # A command saved one of its activities meanwhile, or the store is down:
                # the next look tries again; the other customers go on.
                log.exception(
                    "customer %s: open activities not moved to its new consultant", customer_id
                )
                continue
            self.directory.followed(customer_id, new)
        for customer_id in self.queries.gap_candidates(now or self.clock()):
            try:
                changed += self.app.watch_future_activity(customer_id, SERVICE_ACTOR)
            except Exception:
                log.exception("customer %s: R8 gap not looked at", customer_id)
        return changed

    def run(self, stop: threading.Event, waker: Waker, interval: float = WATCH_INTERVAL) -> None:
        def wake_on_stop() -> None:
            stop.wait()
            waker.notify()

        threading.Thread(target=wake_on_stop, name="activity-watch-stop", daemon=True).start()
        while not stop.is_set():
            try:
                changed = self.look()
                if changed:
                    log.info("customer watch: %d changes saved", changed)
            except Exception:
                log.exception("customer watch failed; looking again in %.0f s", interval)
            waker.wait(interval)
