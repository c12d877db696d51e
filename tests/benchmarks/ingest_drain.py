"""One burst of Zigbee2MQTT messages into a private Mosquitto, and a consumer draining it, timed on its side.

The load is the example home's bed and hall motion for M homes, published flat
out by the load generator's wire publisher in a helper process. The consumers
are a bare aiomqtt subscriber with the gateway's own client settings, and a
fresh `tecmon serve` whose drain is read from its count of events applied.
Used by `tests.benchmarks.ingest` (which also makes `burst`, `write_homes` and
`wait_connected` available, as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import random
import resource
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.mqtt import make_client, subscriptions
from gateway.service import Service
from gateway.settings import MqttSettings, Settings
from simulator.load import HOME_ID, Payloads
from simulator.personas import get_persona
from simulator.wire import WirePublisher
from tests.benchmarks.bench_common import LoopLag, in_process, night_around_now

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

