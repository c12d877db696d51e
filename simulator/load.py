"""Load generation: many homes' sensor traffic at a target aggregate message rate.

The point is to find out whether the gateway keeps up with a whole service's
homes, so the generator itself must not be the bottleneck: each worker
process runs several MQTT connections, each with many QoS 1 publishes in
flight, and a token bucket keeps the aggregate on the target rate. Payloads
are the real Zigbee2MQTT shapes of the example home's devices, encoded once
per (device, value) and stamped with `last_seen` per batch, so a message costs
a few microseconds to make.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.events import EventKind, SensorEvent
from alerts.homeconfig import HomeConfig
from device_profiles import get_profile
from simulator.publisher import Message, Pipeline, client_for, payload_bytes
from simulator.wire import WirePublisher

TICK = 0.01  # seconds between token-bucket refills
HOME_ID = "load-{:05d}"
_VALUES: dict[EventKind, tuple[bool, ...]] = {
    EventKind.BED: (True, False), EventKind.DOOR: (True, False),
    EventKind.MOTION: (True, True, True, False), EventKind.BUTTON: (True,),
}


@dataclass(frozen=True, slots=True)
class LoadPlan:
    homes: int
    rate: float  # messages per second, all workers together
    duration: float  # seconds
    prefix: str = "zigbee2mqtt"
    seed: int = 0
    workers: int = 1
    clients: int = 4  # connections per worker
    qos: int = 1
    client: str = "wire"  # or "aiomqtt"


@dataclass(frozen=True, slots=True)
class LoadResult:
    messages: int
    first: float  # wall-clock time of the first publish
    last: float  # wall-clock time the last PUBACK arrived

    @property
    def seconds(self) -> float:
        return max(self.last - self.first, 1e-9)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.messages else 0.0


def load_home(index: int, template: HomeConfig) -> HomeConfig:
    """Home number `index` of a load run: the template home's devices under a new id."""
    return template.model_copy(update={"home": HOME_ID.format(index), "away": []})


class Payloads:
    """Pre-encoded payload heads per (device, value); only `last_seen` varies."""

    def __init__(self, template: HomeConfig) -> None:
        stamp = datetime(2026, 1, 1, tzinfo=UTC)
        self.choices: list[tuple[str, bytes]] = []
        for device in template.devices:
            codec = get_profile(device.profile).bind(device.kind, device.options)
            for value in _VALUES[device.kind]:
                event = SensorEvent(template.home, device.id, device.kind, value, stamp)
                body = payload_bytes(codec.encode(event))
                head = body.replace(b'"' + stamp.isoformat().encode() + b'"', b'"%s"')
                self.choices.append((device.id, head))

    def pick(self, rng: random.Random) -> tuple[str, bytes]:
        return self.choices[rng.randrange(len(self.choices))]


def simulated_messages(plan: LoadPlan, template: HomeConfig, start: datetime) -> Iterator[Message]:
    """The load as replay messages at exactly the target rate (for `--out`)."""
    rng = random.Random(plan.seed)
    payloads = Payloads(template)
    step = timedelta(seconds=1 / plan.rate)
    for n in range(int(plan.rate * plan.duration)):
        at = start + n * step
        device, head = payloads.pick(rng)
        home = HOME_ID.format(rng.randrange(plan.homes))
        yield Message(at, f"{plan.prefix}/{home}/{device}", head.replace(b"%s", at.isoformat().encode()))


@dataclass(frozen=True, slots=True)
class ClientJob:
    """One connection's share of the load: which homes, how fast, from when."""

    plan: LoadPlan
    template: HomeConfig
    host: str
    port: int
    slot: int
    start_at: float  # wall-clock start, shared by every connection

    @property
    def share(self) -> float:
        return self.plan.rate / (self.plan.workers * self.plan.clients)

    def homes(self) -> list[int]:
        total = self.plan.workers * self.plan.clients
        return list(range(self.slot, self.plan.homes, total)) or [self.slot % max(self.plan.homes, 1)]


def _count(counter: Any, n: int) -> None:
    if counter is not None and n:
        with counter.get_lock():
            counter.value += n


async def _client_run(job: ClientJob, counter: Any) -> LoadResult:
    """Token bucket: every tick, send what the share says should have gone by now."""
    if job.plan.client == "aiomqtt":
        return await _aiomqtt_run(job, counter)
    wire = WirePublisher()
    await wire.connect(job.host, job.port, f"tecmon-load-{os.getpid()}-{job.slot}-{uuid.uuid4().hex[:6]}")
    first, last_ping = await _start(job), time.time()
    async for batch in _batches(job, first, counter):
        await wire.publish(batch)
        if time.time() - last_ping > 30:
            await wire.ping()
            last_ping = time.time()
    await wire.close()
    return LoadResult(wire.acked, first, time.time())


async def _aiomqtt_run(job: ClientJob, counter: Any) -> LoadResult:
    """The same load through aiomqtt, for comparison (far slower per message)."""
    async with client_for(job.host, job.port) as client:
        pipe = Pipeline(client, job.plan.qos)
        first = await _start(job)
        async for batch in _batches(job, first, counter):
            for topic, payload in batch:
                await pipe.send(topic, payload)
        await pipe.drain()
        return LoadResult(pipe.sent, first, time.time())


async def _start(job: ClientJob) -> float:
    await asyncio.sleep(max(0.0, job.start_at - time.time()))
    return time.time()


async def _batches(job: ClientJob, first: float, counter: Any) -> AsyncIterator[list[tuple[str, bytes]]]:
    """Each tick, the messages due by now (at most a few ticks' worth when behind)."""
    plan, rng, homes = job.plan, random.Random(f"{job.plan.seed}:{job.slot}"), job.homes()
    payloads, sent, total = Payloads(job.template), 0, int(job.share * plan.duration)
    while sent < total and (now := time.time()) < first + plan.duration + 10 * TICK:
        due = min(int(job.share * (now - first)) + 1, sent + int(job.share * TICK * 4) + 1, total)
        stamp = datetime.fromtimestamp(now, UTC).isoformat().encode()
        batch = []
        for _ in range(due - sent):
            device, head = payloads.pick(rng)
            home = HOME_ID.format(homes[rng.randrange(len(homes))])
            batch.append((f"{plan.prefix}/{home}/{device}", head.replace(b"%s", stamp)))
        sent = due
        if batch:
            yield batch
            _count(counter, len(batch))
        await asyncio.sleep(TICK)


def combine(results: list[LoadResult]) -> LoadResult:
    return LoadResult(sum(r.messages for r in results), min(r.first for r in results),
                      max(r.last for r in results))


def _worker(plan: LoadPlan, template: HomeConfig, index: int, start_at: float,
            host: str, port: int) -> LoadResult:
    """One process: `plan.clients` connections in one event loop."""
    logging.getLogger("mqtt").setLevel(logging.ERROR)

    async def all_clients() -> list[LoadResult]:
        jobs = [ClientJob(plan, template, host, port, index * plan.clients + c, start_at)
                for c in range(plan.clients)]
        return list(await asyncio.gather(*(_client_run(job, _COUNTER) for job in jobs)))

    return combine(asyncio.run(all_clients()))


_COUNTER: Any = None  # set in each worker process by the pool initializer


def _init_worker(counter: Any) -> None:
    global _COUNTER
    _COUNTER = counter


def run_load(plan: LoadPlan, template: HomeConfig, host: str, port: int,
             counter: Any = None) -> LoadResult:
    """Publish the load from `plan.workers` processes; returns the achieved totals."""
    start_at = time.time() + 0.5 + 0.2 * plan.workers  # everyone connected before the start
    if plan.workers <= 1:
        _init_worker(counter)
        return _worker(plan, template, 0, start_at, host, port)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(plan.workers, mp_context=context, initializer=_init_worker,
                             initargs=(counter,)) as pool:
        futures = [pool.submit(_worker, plan, template, i, start_at, host, port)
                   for i in range(plan.workers)]
        return combine([f.result() for f in futures])


def shared_counter() -> Any:
    """A message counter the workers update, for the progress bar in the parent."""
    return multiprocessing.get_context("fork").Value("q", 0)
