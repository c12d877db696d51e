"""The notifier's own metrics: stuck senders and batched notices, on a service's registry.

Registered on first use, as the store writer registers its own, so that a
`Metrics` made for a test without a notifier stays exactly `METRIC_NAMES`.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.metrics import Metrics

NOTIFY_METRIC_NAMES = (
    "tecmon_notify_abandoned_total", "tecmon_notify_stuck_senders", "tecmon_notices_batched_total",
)


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.abandoned = Counter(
            "tecmon_notify_abandoned",
            "Send attempts given up at their deadline (the thread left to them), by sender lane",
            ["lane"], registry=registry,
        )
        self.stuck = Gauge(
            "tecmon_notify_stuck_senders", "Sender threads still running an attempt given up on",
            registry=registry,
        )
        self.batched = Counter(
            "tecmon_notices_batched",
            "Device notices sent inside a batch message instead of one message each",
            registry=registry,
        )


_REGISTERED: WeakKeyDictionary[CollectorRegistry, NotifyMetrics] = WeakKeyDictionary()


def notify_metrics(metrics: Metrics) -> NotifyMetrics:
    """The notifier metrics on this service's registry, created on first use."""
    registry = metrics.registry
    if registry not in _REGISTERED:
        _REGISTERED[registry] = NotifyMetrics(registry)
    return _REGISTERED[registry]
