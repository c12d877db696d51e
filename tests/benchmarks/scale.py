"""Scale: memory with 100,000 homes loaded, and start-up with 24 h of history.

`python -m tests.benchmarks.scale [--homes 100000] [--per-home 60]`
1. writes N home files and, in a fresh process, loads them the way
   `tecmon serve` does at start (read, validate, compile, decoder routes),
   reporting the resident memory (VmRSS) once they are all loaded;
2. fills a scratch PostgreSQL database with `--per-home` events per home over
   the last 24 h and, in a fresh process, times the whole start-up of the real
   service (`Service.run`: the store opened and migrated, the homes read from
   their files, their configurations checked against the history, every home's
   state rebuilt by replaying that history in full) until ingest starts; and,
   separately, until the configuration history has caught up (at a first start
   every home's configuration is a new version);
3. in another process, takes every home's snapshot 30 minutes before the
   restart (`tecmon serve` takes them every 5 minutes by default), then times
   the real service's start-up again from those snapshots plus the events since.
Each measurement runs in its own process so one cannot inflate the other. The
service's MQTT session points at a port nobody listens on: the broker's part
of a start (connecting, subscribing) is not this process's work.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml

from gateway.clock import SimClock
from gateway.homes import HomeWatcher
from gateway.metrics import Metrics
from gateway.recovery import recover
from gateway.runtime import Runtime
from gateway.snapshots import SnapshotTaker
from gateway.store import open_store
from tests.benchmarks.recovery import NOW, fill, home_config
from tests.benchmarks.service_start import start_service

ROOT = Path(__file__).resolve().parents[2]
SHARED_PG = "postgresql://postgres@127.0.0.1:5432/test"
SNAPSHOT_AT = NOW - timedelta(minutes=30)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_homes(directory: Path, homes: int, as_json: bool = True) -> None:
    """JSON by default: the same shape, and 100,000 YAML files take minutes to write."""
    for index in range(homes):
        if as_json:
            (directory / f"home-{index}.json").write_text(json.dumps(home_config(index)))
        else:
            (directory / f"home-{index}.yaml").write_text(yaml.safe_dump(home_config(index)))


def load_homes(directory: Path) -> tuple[Runtime, float]:
    runtime = Runtime(SimClock(NOW), Metrics())
    began = time.perf_counter()
    _, errors = HomeWatcher([directory]).scan(lambda cfg: runtime.set_home(cfg, start=False))
    assert not errors, errors[:3]
    return runtime, time.perf_counter() - began


def child_load(directory: Path) -> dict[str, Any]:
    before = rss_mb()
    runtime, seconds = load_homes(directory)
    gc.collect()
    return {"homes": len(runtime.homes), "load_s": round(seconds, 1), "rss_mb": round(rss_mb()),
            "rss_before_mb": round(before)}


def child_startup(directory: Path, url: str, snapshots: bool, profile: str | None = None) -> dict[str, Any]:
    """The real service's start-up (`tests/benchmarks/service_start.py`), with RSS once it is ingesting."""
    result = asyncio.run(start_service(directory, url, snapshots, NOW, profile))
    return {**result, "rss_mb": round(rss_mb())}


def child_snapshot(directory: Path, url: str) -> dict[str, Any]:
    """Every home rebuilt as it was at SNAPSHOT_AT, and snapshotted then."""
    async def take() -> dict[str, Any]:
        runtime, _ = load_homes(directory)
        store = open_store(url)
        await store.open()
        await recover(runtime, store, SNAPSHOT_AT, timedelta(hours=24))
        report = await SnapshotTaker(runtime, store, SimClock(SNAPSHOT_AT)).take()
        await store.close()
        return {"written": report.written, "snapshot_round_s": round(report.seconds, 1)}

    return asyncio.run(take())


def in_child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.scale", *args], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def filled_database(homes: int, per_home: int) -> tuple[str, str]:
    name = f"tecmon_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SHARED_PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = SHARED_PG.rsplit("/", 1)[0] + f"/{name}"
    store = open_store(url)
    await store.open()
    await fill(store, homes, per_home)
    await store.close()
    return name, url


def measure(homes: int, per_home: int, profile: str | None = None) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="tecmon-scale-"))
    began = time.perf_counter()
    write_homes(directory, homes)
    written_s = time.perf_counter() - began
    loaded = in_child("--child-load", str(directory))
    name, url = asyncio.run(filled_database(homes, per_home))
    try:
        startup = in_child("--child-startup", str(directory), url, "full")
        taken = in_child("--child-snapshot", str(directory), url)
        profiled = ["--profile", profile] if profile else []
        from_snapshots = {**in_child("--child-startup", str(directory), url, "snapshots", *profiled), **taken}
    finally:
        with psycopg.connect(SHARED_PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {"homes": homes, "files_written_s": round(written_s, 1), "loaded": loaded,
            "per_home_events": per_home, "startup": startup, "startup_from_snapshots": from_snapshots}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=100_000)
    parser.add_argument("--per-home", type=int, default=60)
    parser.add_argument("--child-load", metavar="DIR")
    parser.add_argument("--child-startup", nargs=3, metavar=("DIR", "URL", "full|snapshots"))
    parser.add_argument("--child-snapshot", nargs=2, metavar=("DIR", "URL"))
    parser.add_argument("--profile", metavar="FILE", help="cProfile the start-up from snapshots into FILE")
    args = parser.parse_args()
    if args.child_load:
        print(json.dumps(child_load(Path(args.child_load))))
    elif args.child_startup:
        directory, url, mode = args.child_startup
        print(json.dumps(child_startup(Path(directory), url, mode == "snapshots", args.profile)))
    elif args.child_snapshot:
        print(json.dumps(child_snapshot(Path(args.child_snapshot[0]), args.child_snapshot[1])))
    else:
        print(json.dumps(measure(args.homes, args.per_home, args.profile), indent=2))


if __name__ == "__main__":
    main()
