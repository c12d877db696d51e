"""What the live benchmarks share: a private Mosquitto for bursts, helper processes, percentiles.

Used by `tests.benchmarks.ingest` (which also makes these names available, as
before), `.ingest_drain`, `.ingest_box`, `.latency` and `.preview`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import PrivateBroker, wait_for_port


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: p99 of 300 samples is the 297th, an observed value."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))]


def spread(values: list[float], digits: int = 0) -> dict[str, float]:
    """Median and range of the runs, so a reader can judge the noise."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


@dataclass
class BenchBroker(PrivateBroker):
    """A private Mosquitto sized for bursts: everything queues, nothing is written to disk.

    `max_inflight_messages` is per client and direction; a few hundred keeps the
    socket busy without letting one consumer hoard the broker's attention.
    """

    inflight: int = 100

    def config(self) -> Path:
        path = self.directory / "mosquitto.conf"
        path.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"max_queued_messages 1000000\nmax_queued_bytes 0\nmax_inflight_messages {self.inflight}\n"
            f"log_dest file {self.directory}/mosquitto.log\nuser root\n"
        )
        return path

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config())],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_port("127.0.0.1", self.port):
            raise RuntimeError(f"private Mosquitto did not start on port {self.port}")


@contextlib.contextmanager
def private_broker() -> Iterator[BenchBroker]:
    directory = Path(tempfile.mkdtemp(prefix="tecmon-bench-mqtt-"))
    broker = BenchBroker(directory)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def quiet_service_logs() -> Iterator[None]:
    """The service logs every alert step; a benchmark reports figures, not log lines."""
    logger = logging.getLogger("tecmon")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def helper_processes(count: int) -> Iterator[Executor]:
    """Publishers run in their own processes: in the gateway's, they would steal its CPU."""
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


async def in_process(pool: Executor, fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.wrap_future(pool.submit(fn, *args))


def night_around_now(before: timedelta = timedelta(hours=1), after: timedelta = timedelta(hours=3)) -> dict[str, str]:
    """A UTC night that holds the whole run, whenever it runs, so every rule is live."""
    now = datetime.now(UTC)
    return {"from": (now - before).strftime("%H:%M"), "to": (now + after).strftime("%H:%M")}


class LoopLag:
    """How late the event loop wakes a 10 ms sleeper: a stalled loop delays every message."""

    def __init__(self, every_s: float = 0.01) -> None:
        self.every_s = every_s
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(self.every_s)
            self.lags.append(time.perf_counter() - began - self.every_s)

    def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
        if not self.lags:
            return {}
        return {"loop_lag_ms_p99": round(percentile(self.lags, 0.99) * 1000, 1),
                "loop_lag_ms_max": round(max(self.lags) * 1000, 1)}
