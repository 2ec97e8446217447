"""GET /metrics: what operators graph and alert on, in the Prometheus text format.

Gauges are read from the store, Redis and the broker at scrape time, and counters from the shared
counters (syncengine.counters), so any process of any machine answers the same: nothing here lives in
one process's memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select

from . import counters, inbox, outbox
from .db import session_scope
from .models import OAuthToken, SyncCursor, utcnow

log = logging.getLogger(__name__)

WEBHOOKS = "webhooks_received"  # labels: sender, status code
PUSHES = "pushes"  # labels: system, outcome

webhook_counts = counters.BufferedCounts(WEBHOOKS)


def count_webhook(sender: str, status: int) -> None:
    """Called once per webhook request: an in-memory increment, flushed in the background."""
    webhook_counts.incr(sender, str(status))


class SyncEngineCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield from self._store()
        yield from self._breakers()
        yield from self._queues()

    def _counters(self) -> Iterator[Metric]:
        webhooks = CounterMetricFamily(
            "syncengine_webhooks_received", "Webhook requests answered, by sender and HTTP status",
            labels=["sender", "code"],
        )  # fmt: skip
        pushes = CounterMetricFamily(
            "syncengine_pushes", "Pushes of a record to a system, by outcome", labels=["system", "outcome"]
        )
        for family, name in ((webhooks, WEBHOOKS), (pushes, PUSHES)):
            try:
                for labels, value in sorted(counters.read(name).items()):
                    family.add_metric(list(labels), value)
            except Exception as exc:
                log.warning("metrics: counter %s unreadable: %s", name, type(exc).__name__)
            yield family

    def _store(self) -> Iterator[Metric]:
        events = GaugeMetricFamily("syncengine_inbox_events", "Inbox events by status", labels=["status"])
        tasks = GaugeMetricFamily(
            "syncengine_outbox_tasks", "Pushes and other tasks not done yet, by state (failed: for good)",
            labels=["state"],
        )  # fmt: skip
        oldest = GaugeMetricFamily(
            "syncengine_oldest_unprocessed_event_age_seconds",
            "Age of the oldest received or processing event (0 when none waits)",
        )
        swept = GaugeMetricFamily(
            "syncengine_last_sweep_timestamp_seconds", "Unix time of the last successful sweep",
            labels=["system", "kind"],
        )  # fmt: skip
        expiry = GaugeMetricFamily(
            "syncengine_oauth_token_expiry_timestamp_seconds", "Unix time the stored access token expires",
            labels=["provider"],
        )  # fmt: skip
        try:
            with session_scope() as session:
                for status, count in inbox.counts_by_status(session).items():
                    events.add_metric([status], count)
                for state, count in outbox.counts_by_state(session).items():
                    tasks.add_metric([state], count)
                first = inbox.oldest_unprocessed(session)
                oldest.add_metric([], (utcnow() - first).total_seconds() if first else 0.0)
                for system, kind, at in session.execute(
                    select(SyncCursor.system, SyncCursor.kind, SyncCursor.swept_at)
                ):
                    if at is not None:
                        swept.add_metric([system, kind], _ts(at))
                for provider, at in session.execute(select(OAuthToken.provider, OAuthToken.expires_at)):
                    if at is not None:
                        expiry.add_metric([provider], _ts(at))
        except Exception as exc:  # a scrape during a store outage still shows the counters
            log.warning("metrics: store unreadable: %s", type(exc).__name__)
            return
        yield from (events, tasks, oldest, swept, expiry)

    def _breakers(self) -> Iterator[Metric]:
        from .readings import breaker_states

        family = GaugeMetricFamily(
            "syncengine_breaker_state", "1 for the state each service's circuit breaker is in",
            labels=["service", "state"],
        )  # fmt: skip
        for service, state in breaker_states().items():
            for candidate in ("closed", "open", "half-open"):
                family.add_metric([service, candidate], 1.0 if state == candidate else 0.0)
        yield family

    def _queues(self) -> Iterator[Metric]:
        from .readings import queue_depths

        family = GaugeMetricFamily("syncengine_queue_depth", "Messages waiting per queue", labels=["queue"])
        for queue, depth in queue_depths().items():
            if depth is not None:
                family.add_metric([queue], depth)
        yield family


def _ts(at: datetime) -> float:
    return at.timestamp()


_registry = CollectorRegistry(auto_describe=False)
_registry.register(SyncEngineCollector())


def render() -> bytes:
    return generate_latest(_registry)
