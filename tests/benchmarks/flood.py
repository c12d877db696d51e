"""A flood from one hub: the worst delay it causes another home's press for help and deadline.

`python -m tests.benchmarks.flood [--quick]` (also run by `tests.benchmarks.latency`)

`tecmon serve` runs in this process with the latency benchmark's homes (bed,
hall motion, help button; out of bed after 5 s) against a private Mosquitto
whose queues are raised, so the flood reaches the gateway instead of being shed
by the broker. A helper process (`tests.flood_hub`) sends garbage as fast as it
can for the whole run: payloads that are not JSON, homes nobody configured,
wrong topic depths, garbage on its own button, and 200 KB payloads. Meanwhile:
- other homes press for help, one every half second; the delay is from just
  before the publish to the phone having the POST;
- other homes' out-of-bed deadlines fall due, spread over the flood (each home
  left its bed, with `last_seen`, before the flood began); the delay is from
  the deadline to the phone having the POST.
The figure is the worst of each: the target is under a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from alerts.engine import next_deadline
from gateway.service import Service
from simulator.load import HOME_ID
from tests.benchmarks.ingest import Record, percentile, private_broker, quiet_service_logs, wait_connected
from tests.conftest import Phone, free_port, start_phone

ROOT = Path(__file__).resolve().parents[2]
TARGET_MS = 1000.0
FLOOD_HOME = HOME_ID.format(0)


@dataclass(frozen=True)
class Plan:
    homes: int
    flood_s: float
    presses: int  # one every half second, from a second into the flood
    deadlines: int  # spread over the flood


FULL = Plan(homes=10_000, flood_s=12.0, presses=20, deadlines=20)
QUICK = Plan(homes=1_000, flood_s=5.0, presses=6, deadlines=6)


@dataclass
class Seen:
    """When each home's first alert was raised in the service (monotonic seconds)."""

    raised: dict[str, float] = field(default_factory=dict)

    def __call__(self, line: dict[str, Any]) -> None:
        if line.get("step") == "raised":
            self.raised.setdefault(str(line.get("home")), time.monotonic())


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def leave_beds(client: aiomqtt.Client, homes: list[str], offsets: list[float]) -> None:
    """Each home out of bed so that its deadline falls `offset` seconds from now."""
    from tests.benchmarks.latency import THRESHOLD_S

    now = datetime.now(UTC)
    for home, offset in zip(homes, offsets, strict=True):
        left = now - timedelta(seconds=THRESHOLD_S - offset)
        for occupied, at in ((True, left - timedelta(seconds=1)), (False, left)):
            payload = json.dumps({"occupancy": occupied, "last_seen": at.isoformat()})
            await client.publish(f"zigbee2mqtt/{home}/bed", payload, qos=1)


def out_of_bed(service: Service, home: str) -> bool:
    """The home's out-of-bed deadline is set: its next deadline is seconds away, not hours."""
    due = next_deadline(service.runtime.homes[home].state)
    return due is not None and due < datetime.now(UTC) + timedelta(minutes=1)


def due_monotonic(service: Service, home: str) -> float:
    due = next_deadline(service.runtime.homes[home].state)
    assert due is not None, f"{home} has no deadline"
    return time.monotonic() + (due - datetime.now(UTC)).total_seconds()


async def flood_run(service: Service, port: int, plan: Plan, phone: Phone) -> dict[str, Any]:
    homes = [HOME_ID.format(i) for i in range(1, 1 + plan.presses + plan.deadlines)]
    pressers, leavers = homes[:plan.presses], homes[plan.presses:]
    offsets = [1.5 + i * (plan.flood_s - 2.5) / max(1, plan.deadlines - 1) for i in range(plan.deadlines)]
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-flood-{time.monotonic_ns()}") as client:
        await leave_beds(client, leavers, offsets)
        given_up = time.monotonic() + 60
        while not all(out_of_bed(service, home) for home in leavers):
            if time.monotonic() > given_up:
                raise RuntimeError("the homes leaving their beds were never applied")
            await asyncio.sleep(0.01)
        due = {home: due_monotonic(service, home) for home in leavers}
        rss_before = rss_mb()
        flood = subprocess.Popen(
            [sys.executable, "-m", "tests.flood_hub", "--port", str(port), "--home", FLOOD_HOME,
             "--seconds", str(plan.flood_s)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        pressed: dict[str, float] = {}
        await asyncio.sleep(1.0)
        for home in pressers:
            pressed[home] = time.monotonic()
            await client.publish(f"zigbee2mqtt/{home}/ok-button", json.dumps({"action": "single"}), qos=1)
            await asyncio.sleep(0.5)
        out, _ = await asyncio.to_thread(flood.communicate, timeout=plan.flood_s + 60)
        rss_peak = rss_mb()
        wait_until = time.monotonic() + 30
        while time.monotonic() < wait_until and len(first_posts(phone)) < len(homes):
            await asyncio.sleep(0.1)
    return {"pressed": pressed, "due": due, "posts": first_posts(phone), "flood": json.loads(out),
            "rss_growth_mb": round(rss_peak - rss_before, 1), "gave_up_at": time.monotonic(),
            "bulk_inbox_peak": service.mqtt.pump.bulk.peak, "demoted": len(service.mqtt.router.demoted)}


def first_posts(phone: Phone) -> dict[str, float]:
    with phone.lock:
        received = list(phone.received)
    first: dict[str, float] = {}
    for at, path, _ in received:
        first.setdefault(path.strip("/"), at)
    return first


def delays_ms(starts: dict[str, float], ends: dict[str, float], gave_up: float) -> list[float]:
    """Milliseconds from each start to its end; one that never came counts as late as the wait."""
    return [(ends.get(home, gave_up) - start) * 1000 for home, start in starts.items()]


def record(name: str, found: list[float], raised: list[float], missing: int, extra: dict[str, Any]) -> Record:
    worst = max(found) if found else float("inf")
    detail = {"samples": len(found), "missing": missing, "ms_p50": round(percentile(found, 0.5), 1),
              "ms_until_raised_worst": round(max(raised), 1) if raised else None, **extra}
    return {"name": name, "value": round(worst, 1), "unit": "ms worst", "target": f"< {TARGET_MS:g}",
            "pass": worst < TARGET_MS and not missing, "detail": detail}


def records(report: dict[str, Any], seen: Seen, plan: Plan) -> list[Record]:
    posts, gave_up = report["posts"], report["gave_up_at"]
    extra = {"homes": plan.homes, "flood": report["flood"], "rss_growth_mb": report["rss_growth_mb"],
             "bulk_inbox_peak": report["bulk_inbox_peak"], "topics_demoted": report["demoted"]}
    out = []
    for name, starts in (("flood: worst help press to phone, another hub flooding", report["pressed"]),
                         ("flood: worst deadline to phone, another hub flooding", report["due"])):
        missing = sum(home not in posts for home in starts)
        out.append(record(name, delays_ms(starts, posts, gave_up), delays_ms(starts, seen.raised, gave_up),
                          missing, extra))
    return out


async def measure(plan: Plan) -> list[Record]:
    from tests.benchmarks.latency import service_settings, write_homes

    work = Path(tempfile.mkdtemp(prefix="tecmon-bench-flood-"))
    homes_dir = work / "homes"
    homes_dir.mkdir()
    phone = Phone(free_port())
    server = start_phone(phone)
    try:
        write_homes(homes_dir, plan.homes, phone.port)
        with private_broker() as broker, quiet_service_logs():
            seen = Seen()
            service = Service(service_settings(broker, homes_dir, work), on_line=seen, settle_gc=True)
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            try:
                await wait_connected(service, task, timeout_s=300.0)
                while not service.mqtt.urgent_subscribed:
                    await asyncio.sleep(0.05)
                report = await flood_run(service, broker.port, plan, phone)
            finally:
                stop.set()
                await task
        return records(report, seen, plan)
    finally:
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)


async def run(quick: bool = False) -> list[Record]:
    return await measure(QUICK if quick else FULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 homes, a 5 s flood, to check it works")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick)), indent=2))


if __name__ == "__main__":
    main()
