"""Prometheus metrics: one registry per service instance, names fixed here.

A registry per instance (not the global default) lets tests and the demo run
several gateways in one process without colliding.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    others: Callable[[], list[bytes]] | None = None
    """The workers' own metrics (`tecmon serve --workers N`): summed with these when rendered."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("tecmon_events", "Canonical sensor events ingested", ["kind"], registry=r)
        self.decode_errors = Counter("tecmon_decode_errors", "Payloads that did not decode", registry=r)
        self.dead_letters = Counter(
            "tecmon_dead_letters", "Messages kept for inspection instead of applied", ["reason"], registry=r
        )
        self.dead_letters_not_kept = Counter(
            "tecmon_dead_letters_not_kept",
            "Dead letters counted but not stored: their topic, or all topics, over the keeping limit",
            ["reason"],
            registry=r,
        )
        self.alerts_raised = Counter("tecmon_alerts_raised", "Alerts raised", ["kind"], registry=r)
        self.trigger_to_notification = Histogram(
            "tecmon_trigger_to_notification_seconds",
            "From the triggering event or deadline to the first contact's delivery",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.notifications = Counter(
            "tecmon_notifications", "Notification deliveries by outcome", ["outcome"], registry=r
        )
        self.deliveries_failed = Counter(
            "tecmon_deliveries_failed", "Contacts that could not be reached on any channel", registry=r
        )
        self.mqtt_connected = Gauge("tecmon_mqtt_connected", "1 while connected to the broker", registry=r)
        self.homes_loaded = Gauge(
            "tecmon_homes_loaded", "Homes with a valid configuration loaded", registry=r
        )
        self.config_errors = Counter("tecmon_config_errors", "Home configuration files refused", registry=r)
        self.alerts_late = Counter(
            "tecmon_alerts_late", "Lifecycle steps that fell due while the service was down", registry=r
        )

    def render(self) -> bytes:
        own = generate_latest(self.registry)
        others = self.others() if self.others is not None else []
        return merge_exposition([own, *others]) if others else own


def merge_exposition(texts: list[bytes]) -> bytes:
    """Several processes' metrics as one: samples with the same name and labels are added up.

    Counters and histograms add up exactly; the gauges here are counts too
    (homes loaded, rows buffered, sessions connected), so their sum is the
    service's. Help and type come from the first text that has the metric.
    """
    families: dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text.decode("utf-8")):
            _, kind, samples = families.setdefault(family.name, (family.documentation, family.type, {}))
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = samples.get(key, 0.0) + sample.value
    lines: list[str] = []
    for name, (doc, kind, samples) in families.items():
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
        for (series, labels), value in samples.items():
            shown = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{series}{{{shown}}} {value!r}" if shown else f"{series} {value!r}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


METRIC_NAMES = (
    "tecmon_events_total",
    "tecmon_decode_errors_total",
    "tecmon_dead_letters_total",
    "tecmon_dead_letters_not_kept_total",
    "tecmon_alerts_raised_total",
    "tecmon_trigger_to_notification_seconds",
    "tecmon_notifications_total",
    "tecmon_deliveries_failed_total",
    "tecmon_mqtt_connected",
    "tecmon_homes_loaded",
    "tecmon_config_errors_total",
    "tecmon_alerts_late_total",
    # registered by gateway.store.writer on the same registry
    "tecmon_store_buffered",
    "tecmon_store_written_total",
    "tecmon_store_dropped_total",
    "tecmon_store_write_errors_total",
    "tecmon_store_up",
    # registered by gateway.notify_metrics on the same registry
    "tecmon_notify_abandoned_total",
    "tecmon_notify_stuck_senders",
    "tecmon_notices_batched_total",
)
