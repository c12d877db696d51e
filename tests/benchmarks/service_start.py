"""The real `tecmon serve` start-up, timed phase by phase (used by `tests/benchmarks/scale.py`).

A `Service` with a real PostgreSQL store and the homes read from their files,
run as `tecmon serve` runs it, until ingest starts (`ready_s`: the service
is watching every home again), then until the configuration history has
caught up (`history_s`; it is saved behind ingest), then stopped cleanly
(`stop_s`, which includes the snapshots taken at a stop when they are on).
"""

from __future__ import annotations

import asyncio
import cProfile
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.clock import SimClock
from gateway.service import Service
from gateway.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for(directory: Path, url: str, snapshots: bool) -> Settings:
    """MQTT at a port nobody listens on: connecting to a broker is not this process's work."""
    return Settings(
        homes=[directory], database_url=url, snapshot_every_s=300.0 if snapshots else 0.0,
        mqtt={"port": free_port(), "client_id": f"tecmon-bench-{uuid.uuid4().hex[:8]}"},
        api={"host": "127.0.0.1", "port": free_port()}, config_poll_s=3600.0,
    )


def _timed(phases: dict[str, float], name: str, call: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        result = call(*args, **kwargs)
        if not isinstance(result, Awaitable):
            phases[name] = round(phases.get(name, 0.0) + time.perf_counter() - began, 2)
            return result

        async def waited() -> Any:
            value = await result
            phases[name] = round(phases.get(name, 0.0) + time.perf_counter() - began, 2)
            return value

        return waited()

    return wrapper


async def _until(condition: Callable[[], bool], every_s: float = 0.005) -> None:
    while not condition():
        await asyncio.sleep(every_s)


async def start_service(directory: Path, url: str, snapshots: bool, now: datetime,
                        profile: str | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.ERROR)
    service = Service(settings_for(directory, url, snapshots), clock=SimClock(now), settle_gc=True)
    phases: dict[str, float] = {}
    store: Any = service.store
    store.open = _timed(phases, "store_open_s", store.open)
    if hasattr(store, "config_sources"):
        store.config_sources = _timed(phases, "history_query_s", store.config_sources)
    service._load_from_store = _timed(phases, "db_homes_s", service._load_from_store)  # type: ignore[method-assign]
    service.notifier.warm_up = _timed(phases, "notify_warm_up_s", service.notifier.warm_up)  # type: ignore[method-assign]
    service.watcher.scan = _timed(phases, "files_s", service.watcher.scan)  # type: ignore[method-assign]
    service._recover = _timed(phases, "recover_s", service._recover)  # type: ignore[method-assign]
    profiler = cProfile.Profile() if profile else None
    stop = asyncio.Event()
    began, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    run = asyncio.create_task(service.run(stop))
    await _until(lambda: bool(service.api.ready.get("recovered")) or run.done())
    ready_s, ready_cpu = time.perf_counter() - began, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)  # type: ignore[arg-type]
    await asyncio.wait_for(service._configs_to_keep.join(), timeout=1800)
    history_s = time.perf_counter() - began
    stop.set()
    stopping = time.perf_counter()
    await run
    report = service.recovery
    return {
        "homes": len(service.runtime.homes), "events": report.events if report else 0,
        "from_snapshot": report.from_snapshot if report else 0, **phases,
        "startup_s": round(ready_s, 1), "startup_cpu_s": round(ready_cpu, 1),
        "history_s": round(history_s, 1), "stop_s": round(time.perf_counter() - stopping, 1),
    }
