"""What 1,000,000 homes on 10 gateway instances need, from figures measured on one instance here.

`python -m tests.benchmarks.scale_model [--homes N] [--instances K] [--from out/cluster.json]`

Arithmetic, not a measurement: every input is a per-instance figure this
repository measures (`tests.benchmarks.cluster`, `.scale`, `.recovery`) or a
stated assumption about the homes, and the output says which is which. The
inputs default to the figures in the README; `--from` reads
`python -m tests.benchmarks.cluster` output instead.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Measured:
    """Per instance, on the project's 2-core VM (busy, shared with other work)."""

    events_per_s: float = 1_324.0  # ingest through NATS to PostgreSQL, one instance (cluster bench)
    homes_per_gb: float = 100_000 / 0.383  # RSS with 100,000 homes loaded: 383 MB (scale bench)
    takeover_s_per_10k_homes: float = 3.59  # taking 16 partitions of 10,000 homes, 2 events each
    rebuild_events_per_s: float = 60_000.0  # stored events replayed at start-up (README, start-up)


@dataclass(frozen=True, slots=True)
class Assumed:
    events_per_home_per_day: float = 1_000.0  # bed, motion, door, battery, availability (~1 per 86 s)
    peak_over_mean: float = 3.0  # evenings and mornings
    bytes_per_message: int = 400  # a Zigbee2MQTT JSON payload, subject and stream overhead
    partitions_per_instance: int = 32  # enough to rebalance in small steps
    retention_h: float = 48.0  # twice the 24 h recovery window
    replayed_h: float = 24.0  # history a takeover replays (no snapshots yet)
    memory_headroom: float = 2.0  # runtime, buffers, Python's own


def model(homes: int, instances: int, m: Measured, a: Assumed) -> dict[str, Any]:
    mean_rate = homes * a.events_per_home_per_day / 86_400
    peak_rate = mean_rate * a.peak_over_mean
    partitions = 2 ** math.ceil(math.log2(instances * a.partitions_per_instance))
    per_instance_homes = homes / instances
    survivors = instances - 1
    after_loss_homes = homes / survivors
    stream_bytes = mean_rate * a.retention_h * 3600 * a.bytes_per_message
    return {
        "homes": homes, "instances": instances,
        "partitions": partitions,
        "homes_per_partition": round(homes / partitions),
        "events_per_s_mean": round(mean_rate), "events_per_s_peak": round(peak_rate),
        "peak_events_per_s_per_instance": round(peak_rate / instances),
        "peak_per_instance_vs_measured": round(peak_rate / instances / m.events_per_s, 2),
        "peak_per_instance_after_losing_one": round(peak_rate / survivors),
        "instances_needed_for_peak_at_measured_rate": math.ceil(peak_rate / m.events_per_s),
        "memory_gb_per_instance": round(per_instance_homes / m.homes_per_gb * a.memory_headroom, 2),
        "memory_gb_per_instance_after_losing_one": round(
            after_loss_homes / m.homes_per_gb * a.memory_headroom, 2),
        "takeover_homes_per_survivor": round(per_instance_homes / survivors),
        "takeover_s_after_losing_one": round(takeover_s(per_instance_homes / survivors, m, a), 1),
        "takeover_s_after_losing_one_without_history": round(
            per_instance_homes / survivors / 10_000 * m.takeover_s_per_10k_homes, 1),
        "stream_gb_per_replica": round(stream_bytes / 1e9, 1),
        "stream_gb_all_replicas": round(stream_bytes * 3 / 1e9, 1),
        "stream_messages_retained": round(mean_rate * a.retention_h * 3600),
    }


def takeover_s(homes: float, m: Measured, a: Assumed) -> float:
    """Loading the homes (measured with almost no history) plus replaying their history."""
    replayed = homes * a.events_per_home_per_day * a.replayed_h / 24
    return homes / 10_000 * m.takeover_s_per_10k_homes + replayed / m.rebuild_events_per_s


def measured_from(path: Path) -> Measured:
    loaded = json.loads(path.read_text())
    ingest = loaded["ingest"]
    return Measured(events_per_s=float(ingest["events_per_s"]),
                    takeover_s_per_10k_homes=float(ingest["takeover_s_per_10k_homes"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=1_000_000)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--events-per-home-day", type=float, default=Assumed().events_per_home_per_day)
    parser.add_argument("--from", dest="source", type=Path, help="output of tests.benchmarks.cluster")
    args = parser.parse_args()
    measured = measured_from(args.source) if args.source else Measured()
    assumed = Assumed(events_per_home_per_day=args.events_per_home_day)
    print(json.dumps({"measured": asdict(measured), "assumed": asdict(assumed),
                      "model": model(args.homes, args.instances, measured, assumed)}, indent=2))


if __name__ == "__main__":
    main()
