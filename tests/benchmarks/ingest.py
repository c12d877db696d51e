"""End-to-end ingest: simulator load -> Mosquitto -> `tecmon serve` with PostgreSQL.

`python -m tests.benchmarks.ingest [--quick] [--profile]`

The absolute rate says little on a shared 2-core machine, so the gateway is
compared with a bare aiomqtt subscriber (the same client settings, counting
messages and nothing else) draining the same broker, the same messages, in
the same run. Their ratio is how much of the MQTT client's own ceiling is left
after decoding, the engine, metrics and persistence.

Method, per consumer in turn (bare, gateway, bare, gateway, ..., bare):
1. the consumer connects with a persistent session and subscribes at QoS 1;
2. a separate process publishes the same N Zigbee2MQTT bed and motion
   messages for M homes as fast as the load generator's wire publisher can,
   into a private Mosquitto with room to queue all of them (no drops, and the
   shared broker is left alone);
3. the drain rate is N / (time from the consumer's first to its last message),
   counted on the consumer's side (for the gateway: `events_ingested`).
Each gateway run is ratioed with the mean of the bare runs either side of it;
the figure is the median of those ratios. Both use the service's default
MQTT settings (MQTT 5, QoS 1). The gateway is a fresh `Service` each time (so
an idle gateway never shares the CPU with a bare run), writing to a scratch
PostgreSQL database that is dropped afterwards; its figure also requires every
event to be in that database at the end.
`--profile` adds a cProfile of the gateway's drains (figures then not comparable).
The gateway reads MQTT through its own bulk read path (`gateway.mqtt`); the
bare subscriber is stock aiomqtt (`client.messages`), as an application would
use it. `tests.benchmarks.ingest_box` then measures `tecmon serve --workers 1`
and `--workers 2` as processes of their own (msg/s stored, CPU per 10,000).
The load and the two consumers are in `tests.benchmarks.ingest_drain`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from gateway.settings import MqttSettings, Settings
from tests.benchmarks.bench_common import (
    BenchBroker as BenchBroker,
)
from tests.benchmarks.bench_common import (
    LoopLag as LoopLag,
)
from tests.benchmarks.bench_common import (
    helper_processes as helper_processes,
)
from tests.benchmarks.bench_common import (
    in_process as in_process,
)
from tests.benchmarks.bench_common import (
    night_around_now as night_around_now,
)
from tests.benchmarks.bench_common import (
    percentile as percentile,
)
from tests.benchmarks.bench_common import (
    private_broker as private_broker,
)
from tests.benchmarks.bench_common import (
    quiet_service_logs as quiet_service_logs,
)
from tests.benchmarks.bench_common import (
    spread as spread,
)
from tests.benchmarks.ingest_drain import GatewayRun, bare_run, gateway_run
from tests.benchmarks.ingest_drain import (
    burst as burst,
)
from tests.benchmarks.ingest_drain import (
    wait_connected as wait_connected,
)
from tests.benchmarks.ingest_drain import (
    write_homes as write_homes,
)
from tests.conftest import free_port
from tests.store_contract import SHARED_PG_URL, ensure_shared_postgres

Record = dict[str, Any]
TARGET_RATIO = 0.9


# -- the scratch database ------------------------------------------------------------


@contextlib.asynccontextmanager
async def scratch_database(base_url: str = SHARED_PG_URL) -> AsyncIterator[str]:
    """A database of its own on the shared PostgreSQL, dropped afterwards whatever happens."""
    ensure_shared_postgres()
    name = f"tecmon_bench_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(base_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with await psycopg.AsyncConnection.connect(base_url, autocommit=True) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def stored_events(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT count(*) FROM events")
        row = await cur.fetchone()
        return int(row[0]) if row else 0


# -- the whole measurement -----------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    homes: int
    messages: int
    rounds: int  # gateway runs; bare runs bracket each one


FULL = Plan(homes=1000, messages=30_000, rounds=3)
QUICK = Plan(homes=200, messages=8_000, rounds=1)


def gateway_settings(broker: BenchBroker, homes_dir: Path, database_url: str) -> Settings:
    return Settings(
        mqtt={"host": "127.0.0.1", "port": broker.port, "prefix": "gate2mqtt", "client_id": "bench-gateway"},
        homes=[homes_dir], database_url=database_url, api={"host": "127.0.0.1", "port": free_port()},
        notify={"timeout_s": 2, "retries": 0},
    )


async def measure(plan: Plan, profile: cProfile.Profile | None = None) -> dict[str, Any]:
    homes_dir = Path(tempfile.mkdtemp(prefix="tecmon-bench-homes-"))
    try:
        write_homes(homes_dir, plan.homes, "json://127.0.0.1:9")  # no alerts are expected
        with private_broker() as broker, helper_processes(1) as pool, quiet_service_logs():
            async with scratch_database() as url:
                settings = gateway_settings(broker, homes_dir, url)
                bare = MqttSettings(host="127.0.0.1", port=broker.port, prefix="bare2mqtt", client_id="bench-bare")
                runs = await alternate(plan, settings, bare, pool, profile)
                return {"runs": runs, "stored_rows": await stored_events(url), "protocol": settings.mqtt.protocol}
    finally:
        shutil.rmtree(homes_dir, ignore_errors=True)


async def alternate(plan: Plan, settings: Settings, bare: MqttSettings, pool: Executor,
                    profile: cProfile.Profile | None) -> list[dict[str, Any]]:
    """bare, gateway, bare, gateway, ..., bare: every gateway run has a bare run each side."""
    seed = 0  # the very same messages every time
    runs = [(await bare_run(bare, pool, plan.homes, plan.messages, seed)).summary()]
    for _ in range(plan.rounds):
        job = GatewayRun(settings, plan.homes, plan.messages, seed, profile)
        runs.append((await gateway_run(job, pool)).summary())
        runs.append((await bare_run(bare, pool, plan.homes, plan.messages, seed)).summary())
    return runs


def records(result: dict[str, Any], plan: Plan) -> list[Record]:
    runs, stored = result["runs"], result["stored_rows"]
    bare = [r["events_per_s"] for r in runs if r["consumer"] == "bare"]
    gate = [r["events_per_s"] for r in runs if r["consumer"] == "gateway"]
    ratios = [g / statistics.mean(bare[i:i + 2]) for i, g in enumerate(gate)]
    gate_ok = all(r["all_arrived"] for r in runs if r["consumer"] == "gateway")
    all_stored = stored == plan.messages * plan.rounds
    common = {"homes": plan.homes, "messages_per_run": plan.messages, "mqtt_protocol": result["protocol"],
              "runs": runs}
    return [
        {"name": "ingest: bare aiomqtt subscriber", "value": round(statistics.median(bare)), "unit": "events/s",
         "target": "reference", "pass": all(r["all_arrived"] for r in runs if r["consumer"] == "bare"),
         "detail": {"events_per_s": spread(bare)}},
        {"name": "ingest: tecmon serve, PostgreSQL", "value": round(statistics.median(gate)), "unit": "events/s",
         "target": "all stored", "pass": gate_ok and all_stored,
         "detail": {"events_per_s": spread(gate), "stored_rows": stored,
                    "cpu_s_per_10k": spread([r["cpu_s_per_10k"] for r in runs if r["consumer"] == "gateway"], 2),
                    "expected_rows": plan.messages * plan.rounds, **common}},
        {"name": "ingest: gateway / bare subscriber", "value": round(statistics.median(ratios), 2),
         "unit": "ratio", "target": f">= {TARGET_RATIO}", "pass": statistics.median(ratios) >= TARGET_RATIO,
         "detail": {"ratios": [round(r, 2) for r in ratios], "ratio": spread(ratios, 2),
                    "how": "each gateway run / mean of the bare runs either side of it; median"}},
    ]


async def run(quick: bool = False) -> list[Record]:
    from tests.benchmarks import ingest_box

    plan = QUICK if quick else FULL
    return records(await measure(plan), plan) + await ingest_box.run(quick)


def profile_report(profile: cProfile.Profile, top: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short round, to check it works")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the gateway's drains with cProfile (slower; figures not comparable)")
    args = parser.parse_args()
    if not args.profile:
        print(json.dumps(asyncio.run(run(args.quick)), indent=2))
        return
    profile, plan = cProfile.Profile(), QUICK if args.quick else FULL
    result = records(asyncio.run(measure(plan, profile)), plan)
    print(json.dumps(result, indent=2))
    print(profile_report(profile), file=sys.stderr)


if __name__ == "__main__":
    main()
