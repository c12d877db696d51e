"""One soak run: homes and their nights, the private world, the live run with faults, the report.

Time is compressed: the gateway runs on the test-only `test_clock` setting
(a `ScaledClock`), the publisher sends each message when that clock reaches
its time, and a night from the evening to the next morning passes in the
run's length. See README "Soak test".
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import os
import random
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from gateway.clock import ScaledClock
from simulator.publisher import Message, messages_from_lines
from tests.conftest import Phone, PrivateBroker, free_port, start_phone
from tests.soak import collect
from tests.soak.faults import World, run_faults, schedule
from tests.soak.homes import Night, night_for
from tests.soak.publish import LivePublisher
from tests.soak.report import build_report, changed_by_faults, windows
from tests.store_contract import PrivatePostgres
from tests.support.serve import ServeProcess

log = logging.getLogger("tecmon.soak")
ORIGIN = datetime(2026, 1, 11, 16, 55, tzinfo=UTC)  # before every persona's evening
CUT = datetime(2026, 1, 12, 8, 45, tzinfo=UTC)  # after every night's end and daytime notices
SHORT = (datetime(2026, 1, 11, 23, 0, tzinfo=UTC), datetime(2026, 1, 12, 5, 0, tzinfo=UTC))
"""The short night (quick runs): the evening is sent as each device's latest reading at 22:55."""
JITTER_S = 0.5  # real seconds of message-to-message lag each night is screened against
START_BUDGET_S = 10.0  # real seconds from writing the settings to the first message
PREFIX = "soak"
METRICS_TOKEN = "soak-metrics"  # a private service on a free port, for this run only


@dataclass(frozen=True, slots=True)
class SoakPlan:
    homes: int
    seconds: float  # of publishing: the night passes in this time
    seed: int = 0
    faults: tuple[str, ...] | None = None  # None: random, every kind at least once
    out: Path = Path("out")
    start: datetime = ORIGIN  # simulated: the evening before it is sent at once, when the run begins
    cut: datetime = CUT

    @property
    def speed(self) -> float:
        return (self.cut - self.start).total_seconds() / self.seconds

    @property
    def lag(self) -> timedelta:
        return timedelta(seconds=JITTER_S * self.speed)


def build_nights(plan: SoakPlan, sink: str) -> list[Night]:
    args = [(i, sink, plan.cut, plan.lag, plan.seed, plan.start) for i in range(plan.homes)]
    if plan.homes < 200:
        return [night_for(*a) for a in args]
    with ProcessPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(_night, args, chunksize=25))


def _night(args: tuple[int, str, datetime, timedelta, int, datetime]) -> Night:
    return night_for(*args)


def gateway_settings(world: World, homes: Path, api_port: int, clock: ScaledClock) -> dict[str, Any]:
    return {
        "mqtt": {"host": "127.0.0.1", "port": world.broker.port, "prefix": PREFIX, "client_id": "soak-gateway",
                 "reconnect_min_s": 0.2, "reconnect_max_s": 2.0},
        "database_url": world.postgres.url, "homes": [str(homes)],
        "api": {"host": "127.0.0.1", "port": api_port}, "store_flush_s": 0.1,
        "notify": {"timeout_s": 5, "retries": 1, "retry_backoff_s": 0.5},
        "public_url": "http://soak.invalid", "log_level": "INFO", "auth": {"metrics_token": METRICS_TOKEN},
        "test_clock": {"origin": clock.origin.isoformat(), "anchor": clock.anchor, "speed": clock.speed},
    }


def healthy(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/healthz", timeout=2) as reply:
            return bool(json.loads(reply.read())["mqtt_connected"])
    except OSError:
        return False


def ingested(api: str) -> float:
    """`tecmon_events_total` of the running gateway (0 while it is down)."""
    request = urllib.request.Request(f"{api}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("tecmon_events_total{"))


def due_counter(dues: list[float]) -> Callable[[float, float], int]:
    ordered = sorted(dues)
    return lambda since, until: bisect.bisect_right(ordered, until) - bisect.bisect_left(ordered, since)


def all_messages(nights: list[Night]) -> list[Message]:
    messages = [m for night in nights for m in messages_from_lines(night.lines, PREFIX)]
    messages.sort(key=lambda m: m.ts)  # stable: each home's own order is kept
    return messages


async def run_soak(plan: SoakPlan) -> dict[str, Any]:
    """Everything, start to finish; returns the report (also written to out/soak.json)."""
    began = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="tecmon-soak-"))
    sink = Phone(free_port())
    broker, postgres = PrivateBroker(workdir), PrivatePostgres()
    world = World(broker, postgres, sink, start_phone(sink))
    try:
        broker.start()
        await asyncio.to_thread(postgres.init)
        await asyncio.to_thread(postgres.start)
        nights = await asyncio.to_thread(build_nights, plan, f"json://127.0.0.1:{sink.port}")
        log.info("%d homes and their nights with ground truth ready; starting the gateway", len(nights))
        report = await _live(plan, world, nights, workdir)
    finally:
        world.close()
    report["run"]["wall_seconds"] = round(time.time() - began, 1)
    report["run"]["workdir"] = str(workdir)
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / "soak.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


async def _live(plan: SoakPlan, world: World, nights: list[Night], workdir: Path) -> dict[str, Any]:
    homes = workdir / "homes"
    homes.mkdir()
    for night in nights:
        data = night.config.model_dump(mode="json", by_alias=True)
        (homes / f"{night.config.home}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    clock = ScaledClock(plan.start, time.time() + START_BUDGET_S, plan.speed)
    api_port = free_port()
    world.gateway = ServeProcess(workdir, gateway_settings(world, homes, api_port, clock), start_timeout_s=90)
    world.gateway_up = lambda: healthy(world.gateway.api if world.gateway else "")
    world.ingested = lambda: ingested(world.gateway.api if world.gateway else "")
    await asyncio.to_thread(world.gateway.start)
    phases = {"setup": time.time()}
    messages = all_messages(nights)
    ahead = collect.Observed()
    collect.expected_events(nights, messages, clock, PREFIX, ahead)
    world.due_events = due_counter([due for due, _, _ in ahead.message_events])
    publisher = world.publisher = LivePublisher(messages, clock, "127.0.0.1", world.broker.port)
    await publisher.connect()
    started = clock.real_time_of(plan.start)
    faults = schedule(plan.seconds, list(plan.faults) if plan.faults is not None else None,
                      random.Random(plan.seed))
    injecting = asyncio.create_task(run_faults(world, faults, started, plan.seconds))
    log.info("publishing %d messages over %.0f s; faults planned: %s", len(messages), plan.seconds,
             ", ".join(f"{kind} at {at:.0f} s" for at, kind in faults) or "none")
    await publisher.run()
    await injecting
    phases["publish"] = time.time()
    log.info("published; waiting for the last deliveries")
    held = [n for n in nights if n.robust and not changed_by_faults(n, windows(world.faults, clock), plan.lag)]
    skip = [(_sim_at(clock, f.start) - plan.lag, _sim_at(clock, f.end) + plan.lag)
            for f in world.faults if f.kind == "notifier"]
    observed = await collect.settle(world, nights, held, clock, messages,
                                    lambda at: any(a <= at <= b for a, b in skip))
    phases["settle"] = time.time()
    world.gateway.stop()  # a clean stop: everything buffered is written before the record is read
    log.info("settled; reading the record")
    observed = await asyncio.to_thread(collect.read_store, world.postgres.url, observed)
    summary = plan_summary(plan, clock, len(messages), publisher)
    summary["run"]["phases_s"] = {"publishing": round(phases["publish"] - phases["setup"], 1),
                                  "settling": round(phases["settle"] - phases["publish"], 1)}
    return build_report(summary, nights, world.faults, observed, clock, plan.lag)


def _sim_at(clock: ScaledClock, real: float) -> datetime:
    return clock.origin + timedelta(seconds=(real - clock.anchor) * clock.speed)


def plan_summary(plan: SoakPlan, clock: ScaledClock, messages: int, publisher: LivePublisher) -> dict[str, Any]:
    return {"run": {
        "homes": plan.homes, "seconds": plan.seconds, "speed": round(plan.speed, 1), "seed": plan.seed,
        "simulated": [plan.start.isoformat(), plan.cut.isoformat()], "messages": messages,
        "publisher_acked": publisher.acked, "publisher_most_behind_s": round(publisher.behind_s, 3),
    }}
