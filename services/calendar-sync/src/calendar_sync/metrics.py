"""Prometheus metrics of calendar-sync, in one registry per process (served at /metrics).

Graph's throttling is retried inside the client, out of our sight; an httpx response hook
counts every answer by status, so 429/503/504 show here whatever the client did with them.
"""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge


class SyncMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.applied = Counter(
            "crm_calendar_sync_applied_total",
            "Activity events applied, by event and resulting status (stale/ignored: no change)",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.failures = Counter(
            "crm_calendar_sync_failures_total",
            "Failed attempts to write a calendar entry, by error type",
            ["error"],
            registry=self.registry,
        )
        self.graph_responses = Counter(
            "crm_calendar_sync_graph_responses_total",
            "Answers from Microsoft Graph, by method and status",
            ["method", "status"],
            registry=self.registry,
        )
        self.throttled = Counter(
            "crm_calendar_sync_graph_throttled_total",
            "Graph answers asking us to slow down (429, 503, 504)",
            registry=self.registry,
        )
        self.lag = Gauge(
            "crm_calendar_sync_lag_seconds",
            "Age of the last applied activity event when it was applied",
            registry=self.registry,
        )
        self.unpublished = Gauge(
            "crm_calendar_sync_status_unpublished",
            "Sync status changes not yet relayed to crm.calendar.sync.v1",
            registry=self.registry,
        )
        self.reconciled = Counter(
            "crm_calendar_sync_reconciled_total",
            "Entries checked by reconciliation, by outcome",
            ["outcome"],
            registry=self.registry,
        )

    def observe_graph(self, response: httpx.Response) -> None:
        """An httpx `response` event hook."""
        status = response.status_code
        self.graph_responses.labels(response.request.method, str(status)).inc()
        if status in (429, 503, 504):
            self.throttled.inc()
