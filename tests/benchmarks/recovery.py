"""Start-up recovery: rebuilding N homes from 24 h of stored events.

`python -m tests.benchmarks.recovery --homes 1000 [--per-home 300] [--database URL]`
writes a day of events for each home (a night in bed, a trip to the loo,
movement through the day: `--per-home` events each) into a scratch database,
then times what `tecmon serve` does at start: replaying them all through the
engine and deciding what is still to be done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.homeconfig import parse_home_config
from gateway.clock import SimClock
from gateway.metrics import Metrics
from gateway.recovery import recover
from gateway.runtime import Runtime
from gateway.store import open_store
from gateway.store.base import EventRow, Store

NOW = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)


def home_config(index: int) -> dict[str, Any]:
    return {
        "home": f"home-{index}", "timezone": "Europe/London", "person": {"name": f"Person {index}"},
        "devices": [{"id": "bed", "profile": "tuya-ts0601-bed", "kind": "bed"},
                    {"id": "hall", "profile": "aqara-rtcgq11lm", "kind": "motion"},
                    {"id": "door", "profile": "aqara-mccgq11lm", "kind": "door", "exit": True}],
        "routine": {"night": {"from": "22:00", "to": "07:30"}, "out_of_bed": {"alert_after": "45m"},
                    "exit_door": {"alert_if_not_back_within": "15m"},
                    "still_while_up": {"alert_after": "20m"}, "up_by": "10:30"},
        "contacts": [{"name": "Sam", "notify": ["json://127.0.0.1:9/"]}],
    }


def day_of_events(home: str, per_home: int, rng: random.Random) -> list[EventRow]:
    start = NOW - timedelta(hours=24)
    plan = [(start + timedelta(hours=11), "bed", "bed", 1),  # 23:00 into bed
            (start + timedelta(hours=14, minutes=10), "bed", "bed", 0),  # 02:10 loo
            (start + timedelta(hours=14, minutes=12), "hall", "motion", 1),
            (start + timedelta(hours=14, minutes=20), "bed", "bed", 1),
            (start + timedelta(hours=19, minutes=30), "bed", "bed", 0)]  # 07:30 up
    day_start = start + timedelta(hours=19, minutes=31)
    for _ in range(per_home - len(plan)):
        at = day_start + timedelta(seconds=rng.uniform(0, 4 * 3600))
        plan.append((at, "hall", "motion", rng.choice((0, 1))))
    plan.sort(key=lambda p: p[0])
    return [EventRow(home, device, kind, value, at, at + timedelta(milliseconds=50))
            for at, device, kind, value in plan]


async def fill(store: Store, homes: int, per_home: int) -> int:
    rng, total, batch = random.Random(7), 0, []
    for index in range(homes):
        batch += day_of_events(f"home-{index}", per_home, rng)
        if len(batch) >= 50_000:
            await store.write_events(batch)
            total, batch = total + len(batch), []
    await store.write_events(batch)
    return total + len(batch)


async def one_recovery(url: str, homes: int) -> dict[str, float]:
    store = open_store(url)
    await store.open()
    runtime = Runtime(SimClock(NOW), Metrics())
    configs = [parse_home_config(home_config(i)) for i in range(homes)]
    began = time.perf_counter()
    for cfg in configs:
        runtime.set_home(cfg, start=False)
    loaded = time.perf_counter()
    report = await recover(runtime, store, NOW, timedelta(hours=24))
    done = time.perf_counter()
    await store.close()
    return {"load_s": loaded - began, "recover_s": done - loaded, "events": report.events,
            "late": report.late}


async def measure(base_url: str, homes: int, per_home: int, runs: int) -> dict[str, Any]:
    name = f"tecmon_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        store = open_store(url)
        await store.open()
        written = await fill(store, homes, per_home)
        await store.close()
        results = [await one_recovery(url, homes) for _ in range(runs)]
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    recover_s = statistics.median(r["recover_s"] for r in results)
    return {"homes": homes, "events": written, "runs": runs,
            "config_load_s_median": round(statistics.median(r["load_s"] for r in results), 2),
            "recovery_s_median": round(recover_s, 2),
            "recovery_s_all": [round(r["recover_s"], 2) for r in results],
            "events_per_s": round(written / recover_s), "late_steps": results[0]["late"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--per-home", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.database, args.homes, args.per_home, args.runs)), indent=2))


if __name__ == "__main__":
    main()
