"""The deployment's Prometheus and Grafana files: what is scraped, where, with which token, and what is shown.

Every dashboard query and alert rule may use only metrics tecmon exposes, so
a renamed metric fails here rather than as an empty panel or a silent alert.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway.metrics import METRIC_NAMES
from tests.unit.deploy_support import (
    DEPLOY,
    PROMETHEUS_BUILTINS,
    _no_tecmon_env,  # noqa: F401  (autouse: no TECMON_* leaks in)
    alert_rules,
    assert_query_uses_known_metrics,
    dashboard,
    dashboard_queries,
    load_yaml,
    metric_types,
    metrics_in,
    mount_of,
    panels,
    ports,
    service,
    settings,
)

# =========================================================================== tests: Prometheus and Grafana


def test_prometheus_scrapes_tecmon_metrics() -> None:
    config = load_yaml("prometheus/prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["tecmon"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"tecmon:{settings().api.port}"]


def prometheus_port() -> int:
    args = service("prometheus")["command"]
    listen = [a for a in args if a.startswith("--web.listen-address=")]
    return int(listen[0].rsplit(":", 1)[1]) if listen else 9090


def test_prometheus_files_are_mounted_where_its_config_points() -> None:
    prometheus = service("prometheus")
    config_arg = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert mount_of(prometheus, "./prometheus/prometheus.yml").target == config_arg.split("=", 1)[1]
    rule_files = load_yaml("prometheus/prometheus.yml")["rule_files"]
    assert rule_files == [mount_of(prometheus, "./prometheus/alerts.yml").target]
    assert {p.target for p in ports(prometheus)} == {prometheus_port()}


def test_grafana_datasource_points_at_prometheus() -> None:
    sources = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert [urlsplit(s["url"]).netloc for s in sources] == [f"prometheus:{prometheus_port()}"]


def test_grafana_dashboards_are_provisioned_from_the_mounted_folder() -> None:
    grafana = service("grafana")
    provider = load_yaml("grafana/provisioning/dashboards/tecmon.yml")["providers"][0]
    assert mount_of(grafana, "./grafana/dashboards").target == provider["options"]["path"]
    assert mount_of(grafana, "./grafana/provisioning").target == "/etc/grafana/provisioning"
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert Path(home).parent == Path(provider["options"]["path"])
        assert (DEPLOY / "grafana/dashboards" / Path(home).name).is_file()


def test_dashboard_panels_use_the_provisioned_datasource() -> None:
    uids = {s["uid"] for s in load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"]}
    data = dashboard()
    ids = [p["id"] for p in panels(data)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(data):
        for target in [panel, *panel.get("targets", [])]:
            if "datasource" in target:
                assert target["datasource"]["uid"] in uids, panel["title"]


def test_dashboard_queries_use_only_exposed_metrics() -> None:
    for expr in dashboard_queries():
        assert_query_uses_known_metrics(expr)


@pytest.mark.parametrize("required", [
    "tecmon_events_total", "tecmon_dead_letters_total", "tecmon_alerts_raised_total",
    "tecmon_trigger_to_notification_seconds_bucket", "tecmon_deliveries_failed_total",
    "tecmon_mqtt_connected", "tecmon_homes_loaded",
])
def test_dashboard_shows(required: str) -> None:
    assert any(required in metrics_in(e) for e in dashboard_queries())


def test_dashboard_shows_latency_p50_and_p99() -> None:
    quantiles = {m for e in dashboard_queries() for m in re.findall(r"histogram_quantile\(\s*([0-9.]+)", e)}
    assert {"0.5", "0.99"} <= quantiles


def test_metric_names_are_what_the_registry_exposes() -> None:
    assert set(metric_types()) == set(METRIC_NAMES)


@pytest.mark.parametrize(("expr", "ok"), [
    ("rate(tecmon_events_total[5m])", True),
    ("rate(tecmon_events[5m])", False),
    ("tecmon_trigger_to_notification_seconds", False),
    ("histogram_quantile(0.5, sum by (le) (rate(tecmon_trigger_to_notification_seconds_bucket[5m])))", True),
    ("histogram_quantile(0.5, rate(tecmon_trigger_to_notification_seconds_bucket[5m]))", False),
    ('up{job="tecmon"}', True),
])
def test_query_checking(expr: str, ok: bool) -> None:
    if ok:
        assert_query_uses_known_metrics(expr)
    else:
        with pytest.raises(AssertionError):
            assert_query_uses_known_metrics(expr)


@pytest.mark.parametrize("name", [
    "TecmonDown", "TecmonMqttDisconnected", "TecmonDeliveriesFailing", "TecmonDeadLettersRising",
])
def test_the_essential_alerts_exist(name: str) -> None:
    assert name in {r["alert"] for r in alert_rules()}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_rules_are_complete_and_use_exposed_metrics(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert rule["annotations"]["summary"]
    assert_query_uses_known_metrics(rule["expr"])
    builtins = {b for b in PROMETHEUS_BUILTINS if re.search(rf"\b{b}\{{", rule["expr"])}
    assert metrics_in(rule["expr"]) or builtins, f"{rule['expr']}: no metric"
    for job in re.findall(r'job="([^"]+)"', rule["expr"]):
        jobs = {j["job_name"] for j in load_yaml("prometheus/prometheus.yml")["scrape_configs"]}
        assert job in jobs


def test_prometheus_scrapes_with_the_metrics_token_tecmon_expects() -> None:
    job = {j["job_name"]: j for j in load_yaml("prometheus/prometheus.yml")["scrape_configs"]}["tecmon"]
    auth = job["authorization"]
    assert auth["type"] == "Bearer"
    assert mount_of(service("prometheus"), "./prometheus/tecmon-metrics-token").target == auth["credentials_file"]
    assert "TECMON_AUTH__METRICS_TOKEN=" in (DEPLOY / "tecmon.env.example").read_text()
