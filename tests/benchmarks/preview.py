"""What-if preview latency: 30 stored nights of one home, previewed through the app.

`python -m tests.benchmarks.preview [--quick] [--requests 30]`

Julie's persona (`simulator/`) lives 30 ordinary nights; they are stored in
SQLite on a temporary file with `tecmon db import-events`' code path, and the
service's app is asked `POST /homes/{home}/preview` for those 30 nights with
a stricter routine, over in-process httpx (ASGI), one request at a time.
Each request reads the events from the database and replays them under the
proposed routine (a new one each time, as when a coordinator edits); the
current routine's answer is replayed by the first request and kept while the
events and routine stay the same (`first_ms` is that first request). Timed
from sending to the whole answer. Target: p95 under 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from gateway.clock import SimClock
from gateway.replay import parse_line
from gateway.service import Service, _settle_garbage_collector
from gateway.settings import Settings
from gateway.store.import_events import import_lines
from simulator.persona_cmd import persona_lines
from simulator.personas import get_persona
from tests.benchmarks.ingest import percentile

TARGET_MS = 300.0
PASSWORD = "S3cret-Passw0rd-for-bench"
STRICTER = {"night": {"from": "22:00", "to": "07:30"}, "out_of_bed": {"alert_after": "20m"},
            "still_while_up": {"alert_after": "10m"}, "in_bed_by": "23:30", "up_by": "08:00"}


async def _service(directory: Path, nights: int) -> tuple[Service, str, int]:
    persona = get_persona("julie")
    home = persona.home()
    homes = directory / "homes"
    homes.mkdir()
    shutil.copy(persona.home_file, homes / f"{home.home}.yaml")
    lines = persona_lines("julie", nights)
    service = Service(Settings(database_url=f"sqlite:///{directory / 'tecmon.db'}", homes=[homes]),
                      clock=SimClock(parse_line(lines[0]).ts))
    await service.store.open()
    await service._load_from_store()  # the signing key and database homes, as at start
    service.apply_removed(*service.watcher.scan(lambda cfg: service.apply_home(cfg, starting=True)))
    report = await import_lines(service.store, [home], lines)
    assert not report.problems, report.problems[:3]
    assert isinstance(service.clock, SimClock)
    service.clock.set(parse_line(lines[-1]).ts + timedelta(hours=1))
    return service, home.home, report.events_stored


def proposal(nights: int, i: int) -> dict[str, Any]:
    """A different stricter routine each time (out of bed 15 to 44 minutes), as when editing."""
    return {"routine": {**STRICTER, "out_of_bed": {"alert_after": f"{15 + i % 30}m"}}, "nights": nights}


async def measure(nights: int = 30, requests: int = 30) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="tecmon-preview-"))
    try:
        service, home, events = await _service(directory, nights)
        _settle_garbage_collector()  # as `tecmon serve` does once its homes are loaded
        await service.accounts.add_user("coordinator", "admin", (), None, PASSWORD)
        user = await service.store.get_user("coordinator")
        assert user is not None
        token, _ = service.accounts.issue(user)
        transport = httpx.ASGITransport(app=service.app)
        seconds: list[float] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://tecmon.test",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            began = time.perf_counter()  # the first: both routines replayed
            answer = await client.post(f"/homes/{home}/preview", json=proposal(nights, 0))
            first_ms = (time.perf_counter() - began) * 1000
            assert answer.status_code == 200, answer.text
            for i in range(1, requests + 1):  # as a coordinator edits: a new proposal each time
                began = time.perf_counter()
                answer = await client.post(f"/homes/{home}/preview", json=proposal(nights, i))
                seconds.append(time.perf_counter() - began)
                assert answer.status_code == 200, answer.text
        await service.store.close()
        ms = [s * 1000 for s in seconds]
        return {"nights": nights, "events_stored": events, "requests": requests,
                "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(percentile(ms, 0.95), 1),
                "max_ms": round(max(ms), 1), "first_ms": round(first_ms, 1), "totals": answer.json()["totals"]}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def run(quick: bool = False) -> list[dict[str, Any]]:
    """The figure for `make bench` (`tests.benchmarks.run`)."""
    result = await measure(nights=7 if quick else 30, requests=5 if quick else 30)
    p95 = float(result["p95_ms"])
    return [{"name": f"preview: {result['nights']} nights of one home, p95", "value": p95, "unit": "ms",
             "target": f"< {TARGET_MS:.0f}", "pass": p95 < TARGET_MS, "detail": result}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="7 nights, 5 requests: check it works")
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    nights, requests = (7, 5) if args.quick else (args.nights, args.requests)
    print(json.dumps(asyncio.run(measure(nights, requests)), indent=2))


if __name__ == "__main__":
    main()
