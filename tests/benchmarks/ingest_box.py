"""The whole box: `tecmon serve --workers N` as its own processes, PostgreSQL, the 30,000 burst.

`python -m tests.benchmarks.ingest_box [--quick]` (also part of `tests.benchmarks.ingest`)

For N = 1 and N = 2 in turn, each time a fresh scratch database and the
private Mosquitto of the ingest benchmark:
1. `tecmon serve --workers N` starts as a child process, and is ready when
   `/readyz` answers 200 (every worker connected and recovered) and its
   processes are idle (start-up work such as saving every home's
   configuration history is over);
2. the same burst as the ingest benchmark is published by a helper process;
3. the rate is N messages / (the first message published .. the last row
   stored, polled in the database every 50 ms): ingested *and* stored, so the
   writer's last flush (at most `store_flush_s`, 0.25 s) counts against it;
4. CPU is user + system time of the service's whole process tree (the parent
   and its workers, read from /proc) from just before the burst until every
   row is stored, per 10,000 messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg
import yaml

from tests.benchmarks.ingest import (
    BenchBroker,
    Plan,
    burst,
    helper_processes,
    in_process,
    private_broker,
    scratch_database,
    spread,
    write_homes,
)
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
TARGET_RATE = 12_000
TARGET_CPU_PER_10K = 1.0
TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> dict[int, float]:
    """User + system seconds of a process and of each descendant still running, by pid."""
    found, todo = {}, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            found[current] = (int(fields[11]) + int(fields[12])) / TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return found


def tree_cpu_s(pid: int) -> float:
    return sum(tree_cpu(pid).values())


async def settled(pid: int, window_s: float = 0.5, idle_cpu_s: float = 0.05, limit_s: float = 60.0) -> None:
    """Until start-up work is over (the configuration history of every home is saved after the
    service is ready): the burst is timed from a service doing nothing else."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        began = tree_cpu_s(pid)
        await asyncio.sleep(window_s)
        if tree_cpu_s(pid) - began < idle_cpu_s:
            return


def ready(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/readyz", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def count_rows(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0


async def one_run(broker: BenchBroker, homes_dir: Path, workers: int, plan: Plan, pool: Any) -> dict[str, Any]:
    async with scratch_database() as url:
        port = free_port()
        workdir = Path(tempfile.mkdtemp(prefix="tecmon-bench-box-"))
        config = workdir / "tecmon.yaml"
        config.write_text(yaml.safe_dump({
            # a session of its own each run, gone soon after: an idle one would queue the next burst
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "prefix": "box2mqtt",
                     "client_id": f"bench-box-{uuid.uuid4().hex[:8]}", "session_expiry_s": 1},
            "homes": [str(homes_dir)], "database_url": url, "api": {"host": "127.0.0.1", "port": port},
            "notify": {"timeout_s": 2, "retries": 0}, "log_level": "WARNING"}))
        log = (workdir / "serve.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--workers", str(workers),
                                 "--config", str(config)], cwd=ROOT, stdout=log, stderr=log,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            return await _measure(proc, f"http://127.0.0.1:{port}", url, broker.port, workers, plan, pool)
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()


async def _measure(proc: subprocess.Popen[bytes], api: str, url: str, broker_port: int, workers: int,
                   plan: Plan, pool: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while not ready(api):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"tecmon serve --workers {workers} did not become ready")
        await asyncio.sleep(0.1)
    await settled(proc.pid)
    before = tree_cpu(proc.pid)
    cpu_before = sum(before.values())
    publishing = asyncio.ensure_future(in_process(pool, burst, "127.0.0.1", broker_port, "box2mqtt",
                                                  plan.homes, plan.messages, 0))
    last, seen, quiet = 0.0, 0, time.perf_counter()
    while seen < plan.messages:
        await asyncio.sleep(0.05)
        rows = await asyncio.to_thread(count_rows, url)
        now = time.perf_counter()
        if rows != seen:
            seen, last, quiet = rows, now, now
        elif publishing.done() and now - quiet > 15:
            break
    after = tree_cpu(proc.pid)
    cpu = sum(after.values()) - cpu_before
    by_process = {("parent" if pid == proc.pid else str(pid)): round(t - before.get(pid, 0.0), 2)
                  for pid, t in after.items()}
    published = await publishing
    span = last - published["began"]
    return {"workers": workers, "stored": seen, "expected": plan.messages,
            "msgs_per_s": round(seen / span) if span > 0 else 0,
            "cpu_s_per_10k": round(cpu / max(seen, 1) * 10_000, 2), "seconds": round(span, 2),
            "publisher_msgs_per_s": round(published["rate"]), "cpu_s_by_process": by_process,
            "load_average": round(os.getloadavg()[0], 1)}


async def measure(plan: Plan, workers: tuple[int, ...] = (1, 2), rounds: int = 3) -> list[dict[str, Any]]:
    homes_dir = Path(tempfile.mkdtemp(prefix="tecmon-bench-box-homes-"))
    write_homes(homes_dir, plan.homes, "json://127.0.0.1:9")
    runs = []
    with private_broker() as broker, helper_processes(1) as pool:
        await in_process(pool, time.perf_counter)  # the helper started before anything is timed
        for _ in range(rounds):
            for count in workers:
                runs.append(await one_run(broker, homes_dir, count, plan, pool))
    return runs


def records(runs: list[dict[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    out = []
    for count in sorted({r["workers"] for r in runs}):
        mine = [r for r in runs if r["workers"] == count]
        rates = [r["msgs_per_s"] for r in mine]
        cpus = [r["cpu_s_per_10k"] for r in mine]
        stored = all(r["stored"] == r["expected"] for r in mine)
        rate, cpu = statistics.median(rates), statistics.median(cpus)
        detail = {"msgs_per_s": spread(rates), "cpu_s_per_10k": spread(cpus, 2), "runs": mine,
                  "homes": plan.homes, "messages_per_run": plan.messages}
        out += [
            {"name": f"ingest, whole box, PostgreSQL, --workers {count}", "value": round(rate),
             "unit": "msg/s", "target": f">= {TARGET_RATE:,}", "pass": stored and rate >= TARGET_RATE,
             "detail": detail},
            {"name": f"ingest CPU per 10,000 messages stored, --workers {count}", "value": cpu,
             "unit": "CPU s", "target": f"<= {TARGET_CPU_PER_10K}", "pass": stored and cpu <= TARGET_CPU_PER_10K,
             "detail": {"cpu_s_per_10k": spread(cpus, 2), "how": "user+system time of the parent and "
                        "its workers, from the burst's start until every row is stored"}},
        ]
    return out


async def run(quick: bool = False) -> list[dict[str, Any]]:
    from tests.benchmarks.ingest import FULL, QUICK

    plan = QUICK if quick else FULL
    return records(await measure(plan, rounds=1 if quick else 3), plan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick)), indent=2))


if __name__ == "__main__":
    main()
