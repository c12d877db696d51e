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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from gateway.mqtt import make_client, subscriptions
from gateway.service import Service
from gateway.settings import MqttSettings, Settings
from simulator.load import HOME_ID, Payloads
from simulator.personas import get_persona
from simulator.wire import WirePublisher
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
from tests.conftest import free_port
from tests.store_contract import SHARED_PG_URL, ensure_shared_postgres

Record = dict[str, Any]
TARGET_RATIO = 0.9
STALL_S = 10.0  # no new message for this long after publishing ended: the rest is lost


# -- the load ------------------------------------------------------------------------


def bed_and_motion_template() -> Any:
    """The example home's bed and hall motion only: no button presses, so no alerts to send."""
    home = get_persona("julie").home()
    devices = [d for d in home.devices if d.id in ("bed", "hall-motion")]
    return home.model_copy(update={"devices": devices})


def burst_messages(prefix: str, homes: int, count: int, seed: int) -> list[tuple[str, bytes]]:
    """N messages spread over the homes; `last_seen` rises by 1 µs per message, all in the past."""
    payloads, rng = Payloads(bed_and_motion_template()), random.Random(seed)
    base = datetime.now(UTC) - timedelta(seconds=5)
    out = []
    for n in range(count):
        device, head = payloads.pick(rng)
        stamp = (base + timedelta(microseconds=n)).isoformat().encode()
        out.append((f"{prefix}/{HOME_ID.format(rng.randrange(homes))}/{device}", head.replace(b"%s", stamp)))
    return out


def burst(host: str, port: int, prefix: str, homes: int, count: int, seed: int, clients: int = 4) -> dict[str, float]:
    """Publish N messages flat out (in a helper process); each home stays on one connection, in order."""
    messages = burst_messages(prefix, homes, count, seed)
    shares: list[list[tuple[str, bytes]]] = [[] for _ in range(clients)]
    for topic, payload in messages:
        shares[int(topic.split("/")[1].rsplit("-", 1)[1]) % clients].append((topic, payload))

    async def one(index: int, share: list[tuple[str, bytes]]) -> int:
        wire = WirePublisher()
        await wire.connect(host, port, f"bench-burst-{uuid.uuid4().hex[:8]}-{index}")
        for start in range(0, len(share), 500):
            await wire.publish(share[start:start + 500])
        await wire.close()
        return wire.acked

    async def everyone() -> dict[str, float]:
        began = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in every process of the box
        acked = sum(await asyncio.gather(*(one(i, s) for i, s in enumerate(shares))))
        seconds = time.perf_counter() - began
        return {"acked": acked, "seconds": seconds, "rate": acked / seconds, "began": began}

    return asyncio.run(everyone())


def write_homes(directory: Path, homes: int, contact_url: str) -> None:
    """M homes with the bed and motion sensors of the load, and a routine that is live now."""
    night = night_around_now()
    for index in range(homes):
        home = HOME_ID.format(index)
        (directory / f"{home}.yaml").write_text(
            f"home: {home}\ntimezone: UTC\nperson: {{name: Person {index}}}\ndevices:\n"
            "  - {id: bed, profile: tuya-ts0601-bed, kind: bed}\n"
            "  - {id: hall-motion, profile: aqara-rtcgq11lm, kind: motion}\n"
            f"routine:\n  night: {{from: \"{night['from']}\", to: \"{night['to']}\"}}\n"
            "  out_of_bed: {alert_after: 45m}\n  still_while_up: {alert_after: 20m}\n"
            f"contacts:\n  - {{name: Carer, notify: [\"{contact_url}/{home}\"]}}\n"
        )


# -- consumers -----------------------------------------------------------------------


@dataclass
class Drain:
    """What one consumer received of one burst, timed on its side."""

    consumer: str
    expected: int
    received: int = 0
    first: float = 0.0
    at_first: int = 0  # how many had arrived at `first` (a poll may see several at once)
    last: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        span = self.last - self.first
        return (self.received - self.at_first) / span if span > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {"consumer": self.consumer, "events_per_s": round(self.rate), "received": self.received,
                "expected": self.expected, "all_arrived": self.received == self.expected,
                "seconds": round(self.last - self.first, 2), **self.extra}


async def until_drained(drain: Drain, publishing: Awaitable[dict[str, float]],
                        progress: Callable[[], None] | None = None, poll_s: float = 0.005) -> None:
    """Wait for all N, or give up once publishing is over and nothing new came for a while."""
    publish = asyncio.ensure_future(publishing)
    seen, quiet_since = -1, time.perf_counter()
    while drain.received < drain.expected:
        await asyncio.sleep(poll_s)
        if progress is not None:
            progress()
        if drain.received != seen:
            seen, quiet_since = drain.received, time.perf_counter()
        elif publish.done() and time.perf_counter() - quiet_since > STALL_S:
            break
    drain.extra["publisher_msgs_per_s"] = round((await publish)["rate"])


async def bare_run(mqtt: MqttSettings, pool: Executor, homes: int, count: int, seed: int) -> Drain:
    """aiomqtt with the gateway's own client settings, counting messages and nothing else."""
    drain = Drain("bare", count)
    async with make_client(mqtt) as client:
        for topic in subscriptions(mqtt.prefix):
            await client.subscribe(topic, qos=mqtt.qos)

        async def consume() -> None:
            async for _ in client.messages:
                now = time.perf_counter()
                if not drain.received:
                    drain.first, drain.at_first = now, 1
                drain.received += 1
                drain.last = now
                if drain.received >= count:
                    return

        consumer = asyncio.create_task(consume())
        await until_drained(drain, in_process(pool, burst, mqtt.host, mqtt.port, mqtt.prefix, homes, count, seed))
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
    return drain


@dataclass
class GatewayRun:
    """Options for one gateway run; `profile` wraps the drain in cProfile."""

    settings: Settings
    homes: int
    count: int
    seed: int
    profile: cProfile.Profile | None = None


async def gateway_run(run: GatewayRun, pool: Executor) -> Drain:
    """A fresh `tecmon serve`; the drain is read from its own counter of events applied."""
    service, stop, drain = Service(run.settings, settle_gc=True), asyncio.Event(), Drain("gateway", run.count)
    began = time.perf_counter()
    task = asyncio.create_task(service.run(stop))
    try:
        await wait_connected(service, task)
        drain.extra["start_s"] = round(time.perf_counter() - began, 2)
        before = service.events_ingested

        def progress() -> None:
            done = service.events_ingested - before
            if done and not drain.received:
                drain.first, drain.at_first = time.perf_counter(), done
            if done != drain.received:
                drain.received, drain.last = done, time.perf_counter()

        mqtt = run.settings.mqtt
        lag = LoopLag()
        lag.start()
        if run.profile is not None:
            run.profile.enable()
        cpu_before = _cpu_s()
        await until_drained(drain, in_process(pool, burst, mqtt.host, mqtt.port, mqtt.prefix, run.homes,
                                              run.count, run.seed), progress)
        if run.profile is not None:
            run.profile.disable()
        drain.extra.update(lag.stop())
        drain.extra["stored_s"] = await stored_after(service, drain.first)
        drain.extra["cpu_s_per_10k"] = round((_cpu_s() - cpu_before) / max(drain.received, 1) * 10_000, 2)
    finally:
        stop.set()
        await task
    return drain


def _cpu_s() -> float:
    """This process's user + system time: the gateway, and the benchmark's own 5 ms poll."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def wait_connected(service: Service, task: asyncio.Task[None], timeout_s: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not service.mqtt_state["connected"]:
        if task.done():
            task.result()
            raise RuntimeError("the service stopped before it connected")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the service did not connect to MQTT within {timeout_s:g}s")
        await asyncio.sleep(0.01)


async def stored_after(service: Service, first: float, timeout_s: float = 60.0) -> float | None:
    """Seconds from the first message until the writer had nothing left in memory."""
    deadline = time.perf_counter() + timeout_s
    while service.writer.buffered and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    return None if service.writer.buffered else round(time.perf_counter() - first, 2)


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
