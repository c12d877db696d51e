"""Alert latency under load: 10,000 homes, 2,000 events/s, alerts to a phone over HTTP.

`python -m tests.benchmarks.latency [--quick]`, then `tests.benchmarks.flood` (one hub's flood).

`tecmon serve` runs in this process with 10,000 home files (bed, hall motion,
help button; out of bed after 5 s; a night that holds the run) and SQLite on a
temporary file, against a private Mosquitto. Two helper processes keep the
measuring apart from what is measured:
- the simulator's load generator publishes hall motion across all the homes
  at 2,000 messages/s for the whole run;
- a prober runs the phone (the local HTTP sink from `tests.conftest` that
  apprise's `json://` URLs post to) and publishes the probes, each to a home
  never probed before in the run, so no probe lands on an alert already open:
  * event-triggered: a help-button press (`{"action": "single"}`); latency is
    from just before the publish to the phone receiving the POST;
  * deadline-triggered: the bed occupied, then empty with `last_seen` set to
    the publish instant; latency is from that instant + 5 s (the deadline) to
    the phone receiving the POST.
Both clocks are the prober's `time.monotonic()`. A probe whose alert never
arrives counts as infinitely late. Start-up (reading 10,000 home files until
the MQTT subscription is up) is timed separately.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import shutil
import statistics
import tempfile
import time
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from gateway.service import Service
from gateway.settings import Settings
from simulator.load import HOME_ID, LoadPlan, LoadResult, run_load
from simulator.personas import get_persona
from tests.benchmarks.ingest import (
    BenchBroker,
    LoopLag,
    Record,
    helper_processes,
    in_process,
    night_around_now,
    percentile,
    private_broker,
    quiet_service_logs,
    wait_connected,
)
from tests.conftest import Phone, free_port, start_phone

PREFIX = "zigbee2mqtt"
THRESHOLD_S = 5.0
EVENT_TARGET_MS = 100.0  # a press for help comes on the urgent session, ahead of the load
DEADLINE_TARGET_MS = 1000.0
STARTUP_TARGET_S = 30.0  # the project's start-up target (tests.benchmarks.run, 100,000 homes)
BACKGROUND_SHARE = 0.95  # below this share of the offered load, the figures were not taken under load
RAMP_S = 2.0  # background load first, probes after
GRACE_S = 10.0  # how long after the last deadline an alert may still arrive


@dataclass(frozen=True)
class Plan:
    homes: int
    background_rate: float  # messages per second, all homes
    window_s: float  # probes are published during this long
    probes_per_s: float  # of each kind


FULL = Plan(homes=10_000, background_rate=2000.0, window_s=65.0, probes_per_s=5.0)
QUICK = Plan(homes=1_000, background_rate=2000.0, window_s=10.0, probes_per_s=2.0)


# -- homes -----------------------------------------------------------------------------


HOME_YAML = """\
home: {home}
timezone: UTC
person: {{name: Person {index}}}
devices:
  - {{id: bed, profile: tuya-ts0601-bed, kind: bed, room: bedroom}}
  - {{id: hall-motion, profile: aqara-rtcgq11lm, kind: motion, room: hall}}
  - {{id: ok-button, profile: aqara-wxkg11lm, kind: button, room: bedroom}}
routine:
  night: {{from: "{night_from}", to: "{night_to}"}}
  out_of_bed: {{alert_after: {threshold}s}}
contacts:
  - {{name: Carer, notify: ["json://127.0.0.1:{port}/{home}"]}}
escalation: {{ack_within: 1h, repeat_every: 1h}}
"""


def write_homes(directory: Path, homes: int, phone_port: int) -> float:
    """One YAML file per home, as a care coordinator would write it; returns seconds taken."""
    began, night = time.perf_counter(), night_around_now()
    for index in range(homes):
        home = HOME_ID.format(index)
        (directory / f"{home}.yaml").write_text(HOME_YAML.format(
            home=home, index=index, night_from=night["from"], night_to=night["to"],
            threshold=int(THRESHOLD_S), port=phone_port))
    return time.perf_counter() - began


# -- helper processes ------------------------------------------------------------------


def motion_template() -> Any:
    """The example home with only its hall motion sensor: background load that raises nothing."""
    home = get_persona("julie").home()
    return home.model_copy(update={"devices": [d for d in home.devices if d.id == "hall-motion"]})


def background(host: str, port: int, homes: int, rate: float, seconds: float) -> LoadResult:
    """The simulator's load generator, in a helper process."""
    plan = LoadPlan(homes=homes, rate=rate, duration=seconds, prefix=PREFIX, clients=2)
    return run_load(plan, motion_template(), host, port)


@dataclass(frozen=True)
class Probe:
    kind: str  # "button" or "bed"
    home: str
    published: float  # monotonic, just before the publish
    due: float  # monotonic instant latency is measured from


def _payload(fields: dict[str, Any], at: datetime) -> bytes:
    return json.dumps({**fields, "last_seen": at.isoformat()}).encode()


async def _press(client: aiomqtt.Client, home: str) -> Probe:
    now, wall = time.monotonic(), datetime.now(UTC)
    await client.publish(f"{PREFIX}/{home}/ok-button", _payload({"action": "single"}, wall), qos=1)
    return Probe("button", home, now, now)


async def _leave_bed(client: aiomqtt.Client, home: str) -> Probe:
    """In bed a moment ago, out now: the out-of-bed deadline is `last_seen` + the threshold."""
    earlier = datetime.now(UTC) - timedelta(seconds=1)
    await client.publish(f"{PREFIX}/{home}/bed", _payload({"occupancy": True}, earlier), qos=1)
    now, wall = time.monotonic(), datetime.now(UTC)
    await client.publish(f"{PREFIX}/{home}/bed", _payload({"occupancy": False}, wall), qos=1)
    return Probe("bed", home, now, now + THRESHOLD_S)


async def _publish_probes(host: str, port: int, plan: Plan, homes: list[str]) -> list[Probe]:
    """Alternate presses and bed exits at a steady pace; bed exits stop a deadline before the end."""
    probes: list[Probe] = []
    step, pending = 1.0 / plan.probes_per_s, iter(homes)
    async with aiomqtt.Client(host, port, identifier=f"bench-prober-{random.getrandbits(32):x}") as client:
        began = time.monotonic()
        for n in range(int(plan.window_s * plan.probes_per_s)):
            await asyncio.sleep(max(0.0, began + n * step - time.monotonic()))
            probes.append(await _press(client, next(pending)))
            if n * step < plan.window_s - THRESHOLD_S - 1:
                await asyncio.sleep(max(0.0, began + (n + 0.5) * step - time.monotonic()))
                probes.append(await _leave_bed(client, next(pending)))
    return probes


def prober(host: str, port: int, phone_port: int, plan: Plan, homes: list[str]) -> dict[str, Any]:
    """The phone and the probes, in a helper process; waits for the last alerts, then reports."""
    phone = Phone(phone_port)
    server = start_phone(phone)
    try:
        time.sleep(RAMP_S)
        probes = asyncio.run(_publish_probes(host, port, plan, homes))
        wanted = {p.home for p in probes}
        deadline = time.monotonic() + THRESHOLD_S + GRACE_S
        while time.monotonic() < deadline and len(_first_posts(phone)) < len(wanted):
            time.sleep(0.1)
        return {"probes": [asdict(p) for p in probes], "posts": _first_posts(phone),
                "gave_up_at": time.monotonic()}
    finally:
        server.shutdown()


def _first_posts(phone: Phone) -> dict[str, tuple[float, str]]:
    """When each home's first alert reached the phone, and its title."""
    with phone.lock:
        received = list(phone.received)
    first: dict[str, tuple[float, str]] = {}
    for at, path, body in received:
        first.setdefault(path.strip("/"), (at, str(body.get("title", ""))))
    return first


class Dispatched:
    """When the dispatcher took each home's first call out of the outbox (the service's `on_line`):
    MQTT, decoding and the engine before it; apprise and HTTP after it (one monotonic clock)."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}

    def __call__(self, line: dict[str, Any]) -> None:
        if line.get("step") == "notified":
            self.first.setdefault(str(line.get("home")), time.monotonic())


# -- figures ---------------------------------------------------------------------------


@dataclass
class Latencies:
    """One kind of probe: end-to-end milliseconds and its two halves.

    A probe whose alert never came counts as late as the wait for it (a lower bound),
    so it weighs on the percentiles instead of vanishing from them.
    """

    total: list[float] = field(default_factory=list)
    to_dispatch: list[float] = field(default_factory=list)  # probe due -> dispatcher took the call
    to_phone: list[float] = field(default_factory=list)  # dispatcher -> the phone had the POST
    missing: int = 0
    wrong_alert: int = 0


def latencies(report: dict[str, Any], kind: str, expect: str) -> Latencies:
    out = Latencies()
    for probe in report["probes"]:
        if probe["kind"] != kind:
            continue
        post = report["posts"].get(probe["home"])
        if post is None:
            out.total.append((report["gave_up_at"] - probe["due"]) * 1000)
            out.missing += 1
            continue
        out.wrong_alert += expect not in post[1]
        out.total.append((post[0] - probe["due"]) * 1000)
        handed = report["dispatched"].get(probe["home"])
        if handed is not None:
            out.to_dispatch.append((handed - probe["due"]) * 1000)
            out.to_phone.append((post[0] - handed) * 1000)
    return out


def summary_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"p50": round(statistics.median(values), 1), "p90": round(percentile(values, 0.90), 1),
            "p99": round(percentile(values, 0.99), 1), "max": round(max(values), 1),
            "min": round(min(values), 1)}


def latency_record(name: str, found: Latencies, target_ms: float) -> Record:
    p99 = percentile(found.total, 0.99) if found.total else math.nan
    detail = {"samples": len(found.total), "missing": found.missing, "wrong_alert": found.wrong_alert,
              "ms": summary_ms(found.total), "ms_until_dispatched": summary_ms(found.to_dispatch),
              "ms_dispatched_to_phone": summary_ms(found.to_phone)}
    return {"name": name, "value": round(p99, 1), "unit": "ms p99", "target": f"< {target_ms:g}",
            "pass": bool(found.total) and p99 < target_ms and not found.missing and not found.wrong_alert,
            "detail": detail}


def records(plan: Plan, report: dict[str, Any], run: dict[str, Any]) -> list[Record]:
    event = latencies(report, "button", "pressed for help")
    deadline = latencies(report, "bed", "out of bed too long")
    applied = run["background_applied_per_s"]
    return [
        latency_record("latency: help button to phone", event, EVENT_TARGET_MS),
        latency_record("latency: out-of-bed deadline to phone", deadline, DEADLINE_TARGET_MS),
        {"name": "latency: background load applied", "value": applied, "unit": "events/s",
         "target": f">= {BACKGROUND_SHARE * plan.background_rate:g}",
         "pass": applied >= BACKGROUND_SHARE * plan.background_rate,
         "detail": {"offered_per_s": plan.background_rate, "published_per_s": run["background_published_per_s"],
                    **run["loop_lag"]}},
        {"name": f"latency: start-up with {plan.homes:,} homes", "value": run["start_s"], "unit": "s",
         "target": f"< {STARTUP_TARGET_S:g}", "pass": run["start_s"] < STARTUP_TARGET_S,
         "detail": {"what": "Service.run() until subscribed to MQTT: store opened, home files read, "
                            "validated and compiled, recovery",
                    "config_versions_recorded_s": run["settled_s"], "write_home_files_s": run["write_s"],
                    "homes_loaded": run["homes_loaded"], "persistence": "SQLite on a temporary file"}},
    ]


# -- the run ---------------------------------------------------------------------------


def service_settings(broker: BenchBroker, homes_dir: Path, work: Path) -> Settings:
    return Settings(
        mqtt={"host": "127.0.0.1", "port": broker.port, "prefix": PREFIX, "client_id": "bench-latency"},
        homes=[homes_dir], database_url=f"sqlite:///{work / 'tecmon.db'}",
        api={"host": "127.0.0.1", "port": free_port()},
    )


async def under_load(service: Service, broker: BenchBroker, pool: Executor, plan: Plan,
                     phone_port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Background load and probes at once; the gateway's own counter gives the rate it applied."""
    homes = [HOME_ID.format(i) for i in random.Random(7).sample(range(plan.homes), plan.homes)]
    seconds = RAMP_S + plan.window_s + 1.0  # the last deadline falls 1 s before the window ends
    lag, counter = LoopLag(), IngestRate(service)
    lag.start()
    counter.start()
    load = asyncio.ensure_future(in_process(pool, background, "127.0.0.1", broker.port, plan.homes,
                                            plan.background_rate, seconds))
    report = await in_process(pool, prober, "127.0.0.1", broker.port, phone_port, plan, homes)
    result: LoadResult = await load
    run = {"background_applied_per_s": counter.stop(), "background_published_per_s": round(result.rate),
           "loop_lag": lag.stop()}
    return report, run


class IngestRate:
    """Events the gateway applied per second, from its first to its last (probes included, ~0.5 %)."""

    def __init__(self, service: Service, every_s: float = 0.05) -> None:
        self.service, self.every_s = service, every_s
        self.first: tuple[float, int] | None = None
        self.last: tuple[float, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        start = self.service.events_ingested
        while True:
            await asyncio.sleep(self.every_s)
            count = self.service.events_ingested
            if count != start and self.first is None:
                self.first = (time.perf_counter(), count)
            if self.last is None or count != self.last[1]:
                self.last = (time.perf_counter(), count)

    def stop(self) -> int:
        if self._task is not None:
            self._task.cancel()
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return 0
        return round((self.last[1] - self.first[1]) / (self.last[0] - self.first[0]))


async def settled(service: Service, began: float, timeout_s: float = 120.0) -> float | None:
    """Seconds until every home's first configuration version is recorded (after start-up proper).

    Those writes are a start-up transient; the latencies are meant for a service in its
    stride, so the load waits for them.
    """
    background: set[asyncio.Task[None]] = getattr(service, "_background", set())
    deadline = time.perf_counter() + timeout_s
    while background and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    return None if background else round(time.perf_counter() - began, 2)


async def measure(plan: Plan) -> list[Record]:
    work = Path(tempfile.mkdtemp(prefix="tecmon-bench-latency-"))
    homes_dir = work / "homes"
    homes_dir.mkdir()
    try:
        phone_port = free_port()
        write_s = write_homes(homes_dir, plan.homes, phone_port)
        with private_broker() as broker, helper_processes(2) as pool, quiet_service_logs():
            dispatched = Dispatched()
            service = Service(service_settings(broker, homes_dir, work), on_line=dispatched, settle_gc=True)
            stop = asyncio.Event()
            began = time.perf_counter()
            task = asyncio.create_task(service.run(stop))
            try:
                await wait_connected(service, task, timeout_s=300.0)
                start_s = round(time.perf_counter() - began, 2)
                settled_s = await settled(service, began)
                report, run = await under_load(service, broker, pool, plan, phone_port)
            finally:
                stop.set()
                await task
        run.update(start_s=start_s, settled_s=settled_s, write_s=round(write_s, 2),
                   homes_loaded=len(service.runtime.homes))
        report["dispatched"] = dispatched.first
        return records(plan, report, run)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def run(quick: bool = False) -> list[Record]:
    from tests.benchmarks import flood

    return await measure(QUICK if quick else FULL) + await flood.run(quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 homes for 10 s, to check it works")
    print(json.dumps(asyncio.run(run(parser.parse_args().quick)), indent=2))


if __name__ == "__main__":
    main()
