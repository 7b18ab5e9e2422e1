"""Health, readiness and Prometheus metrics endpoints every service mounts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from crm_platform.http.routes import StrictRoute

log = logging.getLogger(__name__)

Check = Callable[[], object]

# Probes time out after a second by default (Kubernetes): /readyz answers well within that,
# whatever its dependencies do.
READY_TIMEOUT_S: Final = 0.8


class _Probe:
    """One check, run in a daemon thread so that a dependency that hangs cannot hang /readyz.

    A run still under way is joined rather than started again: while a dependency hangs,
    probes arriving every second do not pile up threads. Daemon threads, because a check
    that never returns must not keep the process from exiting.
    """

    def __init__(self, name: str, check: Check) -> None:
        self.name = name
        self._check = check
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._done.set()
        self._error: BaseException | None = None

    def start(self) -> None:
        with self._lock:
            if not self._done.is_set():
                return
            self._done.clear()
            self._error = None
        threading.Thread(target=self._run, name=f"readyz-{self.name}", daemon=True).start()

    def _run(self) -> None:
        try:
            self._check()
        except BaseException as error:  # any failure means not ready
            self._error = error
        finally:
            self._done.set()

    def result(self, deadline: float) -> str:
        if not self._done.wait(max(0.0, deadline - time.monotonic())):
            log.warning("readiness check %s did not answer in time", self.name)
            return "unavailable"
        if self._error is not None:
            # Say which, not why: the reason goes to the log.
            log.warning("readiness check %s failed: %s", self.name, self._error)
            return "unavailable"
        return "ok"


def ops_router(
    registry: CollectorRegistry,
    checks: Mapping[str, Check],
    *,
    ready_timeout: float = READY_TIMEOUT_S,
) -> APIRouter:
    """`/healthz`: the process answers. `/readyz`: every dependency answers (503 if not, or
    if one does not answer within `ready_timeout`)."""
    router = APIRouter(tags=["operations"], route_class=StrictRoute)
    probes = [_Probe(name, check) for name, check in checks.items()]

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz(response: Response) -> dict[str, object]:
        deadline = time.monotonic() + ready_timeout
        for probe in probes:
            probe.start()
        results = {probe.name: probe.result(deadline) for probe in probes}
        ready = all(v == "ok" for v in results.values())
        response.status_code = 200 if ready else 503
        return {"status": "ready" if ready else "not_ready", "checks": results}

    @router.get("/metrics", response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
