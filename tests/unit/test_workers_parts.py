"""The parts of `tecmon serve --workers N` that need no process: subscriptions, defaults, metrics, table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import Metrics, merge_exposition
from gateway.mqtt import home_subscriptions, subscriptions
from gateway.partitions import partition_of
from gateway.settings import Settings
from gateway.workers import default_workers
from tests.benchmarks import table


def test_a_worker_subscribes_to_its_homes_topics_only() -> None:
    assert home_subscriptions("zigbee2mqtt", ["ann", "bob"]) == [
        "zigbee2mqtt/ann/+", "zigbee2mqtt/ann/+/availability",
        "zigbee2mqtt/bob/+", "zigbee2mqtt/bob/+/availability",
    ]
    assert subscriptions("zigbee2mqtt") == ["zigbee2mqtt/+/+", "zigbee2mqtt/+/+/availability"]


def test_every_home_has_exactly_one_worker() -> None:
    homes = [f"home-{n}" for n in range(1000)]
    owners = [partition_of(h, 2) for h in homes]
    assert set(owners) == {0, 1}
    assert 400 < owners.count(0) < 600


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///tecmon.db", 1),
    ("postgresql://postgres@127.0.0.1/test", None),  # one per core
])
def test_the_default_number_of_workers(url: str, expected: int | None) -> None:
    import os

    assert default_workers(Settings(database_url=url)) == (expected or len(os.sched_getaffinity(0)))


def _metrics(events: int, homes: int) -> bytes:
    metrics = Metrics()
    metrics.events.labels("bed").inc(events)
    metrics.homes_loaded.set(homes)
    return metrics.render()


def test_the_workers_metrics_are_summed_into_one_exposition() -> None:
    merged = merge_exposition([_metrics(3, 10), _metrics(4, 12)])
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(merged.decode()) for s in family.samples}
    assert samples[("tecmon_events_total", (("kind", "bed"),))] == 7
    assert samples[("tecmon_homes_loaded", ())] == 22


def test_a_parent_renders_its_own_and_its_workers_metrics() -> None:
    parent = Metrics()
    parent.others = lambda: [_metrics(5, 1)]
    assert b'tecmon_events_total{kind="bed"} 5.0' in parent.render()


def test_the_readme_table_is_written_from_the_results(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{table.START}\n| figure | value | target | result |\n|---|---|---|---|\n"
                      "| old figure | 1 s | < 2 | PASS |\n| ratio | 0.50 | >= 0.9 | MISS |\n"
                      f"{table.END}\n\nafter\n")
    report = {"at": "2026-12-01T14:00:00+00:00", "quick": False, "machine": {"python": "3.11.7", "cpus": 2},
              "figures": [{"name": "ratio", "value": 0.93, "unit": "ratio", "target": ">= 0.9", "pass": True},
                          {"name": "rate", "value": 12345.4, "unit": "msg/s", "target": ">= 12,000",
                           "pass": True}]}
    (tmp_path / "bench.json").write_text(json.dumps(report))
    table.rewrite(readme, report, keep_others=True)
    text = readme.read_text()
    assert "| ratio | 0.93 | >= 0.9 | PASS |" in text
    assert "| rate | 12,345 msg/s | >= 12,000 | PASS |" in text
    assert "| old figure | 1 s | < 2 | PASS |" in text and "0.50" not in text
    assert text.startswith("# x\n") and text.endswith("after\n")
    table.rewrite(readme, report, keep_others=False)
    assert "old figure" not in readme.read_text()
