"""Background workers (relays, projectors, consumers) run in supervised threads.

A worker that raises is logged and started again after a capped backoff, so one bad moment
(a database restart, a lost LISTEN connection) does not silently stop a relay. `stop()` sets
the shared event every worker watches and waits for them to finish, all against one deadline:
a worker that cannot finish in time (a handler inside a slow call) is left behind, a daemon
thread that does not keep the process from exiting, and what it had not committed is
redelivered to whoever takes its work over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Run = Callable[[threading.Event], None]


@dataclass(frozen=True, slots=True)
class Worker:
    name: str
    run: Run


class Supervisor:
    def __init__(self, workers: list[Worker], *, max_backoff: float = 30.0) -> None:
        self.stop_event = threading.Event()
        self._workers = workers
        self._max_backoff = max_backoff
        self._threads: list[threading.Thread] = []
        self.restarts: dict[str, int] = {w.name: 0 for w in workers}

    def start(self) -> None:
        for worker in self._workers:
            thread = threading.Thread(
                target=self._supervise, args=(worker,), name=worker.name, daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _supervise(self, worker: Worker) -> None:
        backoff = 0.5
        while not self.stop_event.is_set():
            try:
                worker.run(self.stop_event)
                return
            except Exception:
                self.restarts[worker.name] += 1
                log.exception("worker %s failed; restarting in %.1fs", worker.name, backoff)
                if self.stop_event.wait(backoff):
                    return
                backoff = min(backoff * 2, self._max_backoff)

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 7.0) -> bool:
        """Tell every worker to stop and wait up to `timeout` s in all; True if all did."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [thread.name for thread in self._threads if thread.is_alive()]
        if stuck:
            log.warning("worker(s) %s did not stop within %.1fs", ", ".join(stuck), timeout)
        return not stuck
