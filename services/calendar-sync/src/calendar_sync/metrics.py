"""Prometheus metrics of calendar-sync, in one registry per process (served at /metrics).

Graph's throttling is handled inside the client and the lanes, out of our sight; an httpx
response hook counts every answer by status, so 429/503/504 show here whatever was done with
them. Mailboxes that refuse us are counted from the state at each scrape, so every pod shows
the cluster's number, not only what it saw itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class SyncMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.applied = Counter(
            "crm_calendar_sync_applied_total",
            "Activity events applied to the wanted state, by event and resulting status "
            "(stale/ignored: no change)",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.written = Counter(
            "crm_calendar_sync_written_total",
            "Calendar writes committed by the mailbox lanes, by resulting status",
            ["status"],
            registry=self.registry,
        )
        self.failures = Counter(
            "crm_calendar_sync_failures_total",
            "Calendar entries refused for good (failed and parked), by error type",
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
        self.pauses = Counter(
            "crm_calendar_sync_lane_pauses_total",
            "Mailbox lanes paused, by reason (throttled, budget, unreachable, unavailable, retry)",
            ["reason"],
            registry=self.registry,
        )
        self.unavailable = Counter(
            "crm_calendar_sync_mailbox_unavailable_total",
            "Times a mailbox answered that it is unavailable, by Graph code",
            ["code"],
            registry=self.registry,
        )
        self.duplicates_removed = Counter(
            "crm_calendar_sync_duplicates_removed_total",
            "Extra events of an activity found and deleted",
            registry=self.registry,
        )
        self.user_deleted = Counter(
            "crm_calendar_sync_user_deleted_total",
            "Entries found deleted in Outlook by their user (gone or in Deleted Items)",
            registry=self.registry,
        )
        self.budget_used = Gauge(
            "crm_calendar_sync_budget_used_ratio",
            "Share of the request budget the last released mailbox had used in its window",
            registry=self.registry,
        )
        self.lag = Gauge(
            "crm_calendar_sync_lag_seconds",
            "Age of the last applied activity event when it was applied",
            registry=self.registry,
        )
        self.lane_delay = Gauge(
            "crm_calendar_sync_lane_delay_seconds",
            "How long the last written entry had been due when its lane wrote it",
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


class UnavailableMailboxes(Collector):
    """`crm_calendar_sync_mailboxes_unavailable{code}`: mailboxes refusing us now (state)."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "crm_calendar_sync_mailboxes_unavailable",
            "Mailboxes whose lane waits for an administrator, by Graph code",
            labels=["code"],
        )
        try:
            for code, count in sorted(self._counts().items()):
                family.add_metric([code], count)
        except Exception as error:  # a scrape must not fail because the database is down
            log.warning("cannot count unavailable mailboxes: %s", error)
        yield family

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self)
