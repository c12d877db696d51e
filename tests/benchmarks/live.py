"""Live gateway figures: ingest rate at a light load and trigger-to-phone latency.

`python -m tests.benchmarks.live [--homes N] [--rate EV_PER_S] [--seconds S]`
runs `tecmon serve` against the Mosquitto on 127.0.0.1:1883, publishes
motion events for N homes at a steady rate plus a help-button press every
half second in a random home, and measures:
- events/s the gateway applied (from its own counter) over the steady period;
- from publishing the press to the local HTTP sink receiving apprise's POST.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import yaml

from gateway.service import Service
from gateway.settings import Settings
from tests.conftest import Phone, free_port, start_phone


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def write_homes(directory: Path, homes: int, phone_url: str) -> None:
    for i in range(homes):
        cfg = {
            "home": f"h{i}", "timezone": "UTC", "person": {"name": f"Person {i}"},
            "devices": [{"id": "hall", "profile": "aqara-rtcgq11lm", "kind": "motion"},
                        {"id": "button", "profile": "aqara-wxkg11lm", "kind": "button"}],
            "routine": {"night": {"from": "00:00", "to": "23:59"}},
            "contacts": [{"name": "Carer", "notify": [f"{phone_url}/h{i}"]}],
        }
        (directory / f"h{i}.yaml").write_text(yaml.safe_dump(cfg))


async def load(prefix: str, homes: int, rate: float, seconds: float, presses: dict[str, float]) -> int:
    """Motion at `rate` across homes, a help press every 0.5 s; returns messages sent."""
    sent, start = 0, time.monotonic()
    rng = random.Random(1)
    async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as client:
        next_press = start + 0.5
        while (now := time.monotonic()) - start < seconds:
            home = f"h{rng.randrange(homes)}"
            if now >= next_press:
                presses[home] = time.monotonic()
                await client.publish(f"{prefix}/{home}/button", json.dumps({"action": "single"}), qos=1)
                next_press += 0.5
            await client.publish(f"{prefix}/{home}/hall", json.dumps({"occupancy": True}), qos=1)
            sent += 1
            await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
    return sent


async def measure(homes: int, rate: float, seconds: float) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="tecmon-bench-"))
    phone = Phone(free_port())
    server = start_phone(phone)
    write_homes(directory, homes, f"json://127.0.0.1:{phone.port}")
    prefix = f"b{uuid.uuid4().hex[:8]}"
    settings = Settings(mqtt={"prefix": prefix, "client_id": f"tecmon-{prefix}"}, homes=[directory], database_url="sqlite:///:memory:",
                        api={"host": "127.0.0.1", "port": free_port()}, notify={"timeout_s": 5, "retries": 0})
    service, stop, presses = Service(settings, settle_gc=True), asyncio.Event(), {}
    task = asyncio.create_task(service.run(stop))
    while not service.mqtt_state["connected"]:
        await asyncio.sleep(0.05)
    before, began = service.events_ingested, time.monotonic()
    sent = await load(prefix, homes, rate, seconds, presses)
    await asyncio.sleep(1.0)
    applied, elapsed = service.events_ingested - before, time.monotonic() - began
    stop.set()
    await task
    server.shutdown()
    latencies = [(t - presses[path.strip("/")]) * 1000 for t, path, body in phone.received
                 if path.strip("/") in presses and "all clear" not in body.get("title", "")]
    return {"homes": homes, "target_rate": rate, "messages_sent": sent, "events_applied": applied,
            "applied_per_s": round(applied / elapsed, 1), "alerts_measured": len(latencies),
            "latency_ms_p50": round(statistics.median(latencies), 1),
            "latency_ms_p99": round(percentile(latencies, 0.99), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200.0, help="motion events per second, all homes")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.homes, args.rate, args.seconds)), indent=2))


if __name__ == "__main__":
    main()
