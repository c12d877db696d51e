"""Beyond one machine, measured: ingest through NATS, a partition takeover, the crash window.

`python -m tests.benchmarks.cluster [--quick] [--crash-only [--trials N] [--qos 1|2]]`
(`TECMON_NATS_SERVER=/path/to/nats-server` runs another server build than Debian's)

A real three-node NATS cluster (JetStream, MQTT) on free loopback ports, a
scratch PostgreSQL database, one `ingest: nats` gateway in this process.
1. ingest: N bed messages published over MQTT 3.1.1 as fast as paho can;
   the rate is N / (first publish to last event stored).
2. takeover: with H homes and their events stored, a second instance's
   rebuild of every partition (the sum of its `TakeoverReport`s), per 10,000 homes.
3. crash window: while homes publish at 500 msg/s through one node, the
   stream leader is killed (-9) or stopped in lame duck mode, or a follower
   is stopped; acknowledged publishes against messages the stream kept.
Figures feed `tests/benchmarks/scale_model.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from gateway.nats import NatsLink
from gateway.service import Service
from tests.conftest import Phone, start_phone
from tests.integration.nats_cluster import (
    NatsCluster,
    nats_server_version,
    publish_mqtt,
    publish_mqtt_acked,
    stream_payloads,
    stream_state_of,
)
from tests.integration.nats_homes import cluster_settings, write_homes

SHARED_PG = "postgresql://postgres@127.0.0.1:5432/test"
PARTITIONS = 16


def scratch_database() -> str:
    name = f"tecmon_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SHARED_PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return SHARED_PG.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    with psycopg.connect(SHARED_PG, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def events_stored(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


async def until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def measure_ingest_and_takeover(root: Path, cluster: NatsCluster, homes: int, messages: int,
                                      phone: Phone) -> dict[str, Any]:
    url = scratch_database()
    names = [f"home-{i:06d}" for i in range(homes)]
    homes_dir = write_homes(root / "homes", names, phone)
    try:
        first = Service(cluster_settings(homes_dir, cluster.urls, url, PARTITIONS, "bench-a"))
        stop = asyncio.Event()
        task = asyncio.create_task(first.run(stop))
        assert first.cluster is not None
        await until(lambda: len(first.cluster.state.held) == PARTITIONS, 120)  # type: ignore[union-attr]
        topics = [f"zigbee2mqtt/{names[i % homes]}/bed" for i in range(messages)]
        print("[cluster] ingest", file=sys.stderr, flush=True)
        began = time.monotonic()
        await asyncio.to_thread(publish_mqtt, cluster, topics, b'{"occupancy": true}')
        complete = await until(lambda: events_stored(url) >= messages, 300)
        ingest_s = time.monotonic() - began
        stop.set()
        await task
        second = Service(cluster_settings(homes_dir, cluster.urls, url, PARTITIONS, "bench-b"))
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop))
        assert second.cluster is not None
        await until(lambda: len(second.cluster.state.held) == PARTITIONS, 300)  # type: ignore[union-attr]
        took = sum(t.seconds for t in second.cluster.state.takeovers)
        stop.set()
        await task
    finally:
        drop_database(url)
    return {"messages": messages, "all_stored": complete, "ingest_s": round(ingest_s, 2),
            "events_per_s": round(messages / ingest_s), "homes": homes,
            "events_per_home": messages / homes, "takeover_s": round(took, 2),
            "takeover_s_per_10k_homes": round(took * 10_000 / homes, 2)}


async def stream_last_seq(cluster: NatsCluster) -> int:
    return int((await stream_state_of(cluster)).last_seq)


async def stream_leader(cluster: NatsCluster) -> str:
    return str((await stream_state_of(cluster)).leader or "n1")


async def kept_in_stream(cluster: NatsCluster, after_seq: int) -> list[bytes]:
    """The payloads the stream holds after `after_seq`."""
    return await stream_payloads(cluster, after_seq + 1, await stream_last_seq(cluster) - after_seq)


async def crash_trial(cluster: NatsCluster, how: str, count: int, qos: int = 1) -> dict[str, Any]:
    """One stop while publishing `count` numbered messages at 500/s through a node that stays.

    Each message says its number, so the stream read back tells a lost message (acknowledged,
    not in the stream) from one the stream holds twice.
    """
    print(f"[cluster] crash trial: {how}, QoS {qos}", file=sys.stderr, flush=True)
    leader = await stream_leader(cluster)
    others = [n.name for n in cluster.nodes if n.name != leader]
    victim, via = (others[0], others[1]) if how == "follower" else (leader, others[0])
    before = await stream_last_seq(cluster)
    trial = uuid.uuid4().hex[:8]  # a late message of an earlier trial must not count for this one
    payloads = [b'{"occupancy": true, "linkquality": %d, "trial": "%s"}' % (i, trial.encode()) for i in range(count)]
    acked: list[list[int]] = []
    thread = threading.Thread(target=lambda: acked.append(publish_mqtt_acked(
        cluster, [f"zigbee2mqtt/h{i % 50}/bed" for i in range(count)], payloads,
        node=via, per_second=500, client_id=f"crash-{trial}", qos=qos)))
    thread.start()
    await asyncio.sleep(count / 500 / 2)
    cluster.stop(victim, hard=how == "kill")
    await asyncio.to_thread(thread.join)
    await asyncio.sleep(1.0)
    kept = await kept_in_stream(cluster, before)
    cluster.wait_stopped(victim)
    cluster.start(victim)
    index = {body: i for i, body in enumerate(payloads)}
    in_stream = {index[body] for body in kept if body in index}
    return {"how": how, "victim": victim, "leader": leader, "qos": qos, "acknowledged": len(acked[0]),
            "kept": len(kept), "lost": len(set(acked[0]) - in_stream), "twice": len(kept) - len(in_stream)}


async def measure(quick: bool, crash_only: bool = False, trials: int | None = None,
                  qos: int = 1) -> dict[str, Any]:
    homes, messages, default_trials = (500, 2000, 1) if quick else (10_000, 20_000, 2)
    trials = trials or default_trials
    phone = Phone(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = NatsCluster.create(root / "nats", PARTITIONS)
        cluster.start()
        server = start_phone(phone)
        try:
            link = NatsLink(cluster.urls)
            await link.connect()
            await link.ensure_stream(PARTITIONS)
            await link.close()
            crash = [await crash_trial(cluster, how, 2000, qos) for _ in range(trials)
                     for how in ("follower", "leader", "kill")]
            throughput = {} if crash_only else await measure_ingest_and_takeover(
                root, cluster, homes, messages, phone)
        finally:
            server.shutdown()
            cluster.close()
    lost = {how: [t["lost"] for t in crash if t["how"] == how] for how in ("follower", "leader", "kill")}
    return {"nats_server": nats_server_version(), "ingest": throughput, "crash_trials": crash,
            "crash_lost_median": {how: statistics.median(v) for how, v in lost.items()}}


async def run(quick: bool = False) -> list[dict[str, Any]]:
    from tests.benchmarks.run import figure

    result = await measure(quick)
    ingest, lost = result["ingest"], result["crash_lost_median"]
    return [
        figure("ingest through NATS (MQTT 3.1.1 -> JetStream -> gateway -> PostgreSQL)",
               ingest["events_per_s"], "events/s", "all stored", ingest["all_stored"], **ingest),
        figure("partition takeover, per 10,000 homes", ingest["takeover_s_per_10k_homes"], "s", "< 30",
               ingest["takeover_s_per_10k_homes"] < 30, **ingest),
        figure("acknowledged MQTT QoS 1 lost, follower stopped (of 2,000)", lost["follower"], "messages",
               "0", lost["follower"] == 0, trials=result["crash_trials"]),
        figure("acknowledged MQTT QoS 1 lost, stream leader in lame duck (of 2,000)", lost["leader"],
               "messages", "measured", True),
        figure("acknowledged MQTT QoS 1 lost, stream leader kill -9 (of 2,000)", lost["kill"], "messages",
               "measured", True),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--crash-only", action="store_true", help="only the crash-window trials")
    parser.add_argument("--trials", type=int, help="rounds of the three stops (default 2, 1 with --quick)")
    parser.add_argument("--qos", type=int, choices=(1, 2), default=1,
                        help="the publishers' MQTT QoS (2 needs nats-server 2.10 or later)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.quick, args.crash_only, args.trials, args.qos)), indent=2))


if __name__ == "__main__":
    main()
