"""The buffered writer between the service and its store, and the retention job.

The writer is tested against `FlakyStore`, an in-memory store whose database
can be "down", so outages, backoff, overflow and refused rows take
milliseconds; `tests/integration/test_store_outage.py` repeats the outage
against a real PostgreSQL that is really stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.metrics import Metrics
from gateway.store import open_store
from gateway.store.base import EventRow, StoreUnavailable, TableWrites
from gateway.store.writer import STORE_METRIC_NAMES, BufferedWriter, run_retention, store_metrics
from tests import store_contract as sc
from tests.conftest import eventually
from tests.store_contract import T0

# -- the writer ----------------------------------------------------------------------------------


@dataclass
class FlakyStore(TableWrites):
    """An in-memory store whose database can be down, or refuse rows it does not like."""

    down: bool = False
    opened: bool = True
    refuse: set[str] = field(default_factory=set)  # `source` values of events it refuses
    tables: dict[str, list[Any]] = field(default_factory=lambda: {
        "events": [], "inputs": [], "alert_steps": [], "notification_attempts": [], "dead_letters": []})
    calls: int = 0
    gate: asyncio.Event | None = None  # when set, writes wait for it (a slow database)

    @property
    def is_open(self) -> bool:
        return self.opened

    async def open(self) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")
        self.opened = True

    async def _write(self, table: str, rows: Sequence[Any]) -> None:
        self.calls += 1
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise StoreUnavailable("connection refused")
        if any(getattr(r, "source", None) in self.refuse for r in rows):
            raise ValueError("value out of range")
        self.tables[table].extend(rows)

    async def write_events(self, rows: Sequence[EventRow]) -> None:
        await self._write("events", rows)



def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def writer_for(store: Any, metrics: Metrics, **kwargs: Any) -> BufferedWriter:
    options = {"flush_every_s": 0.01, "backoff_min_s": 0.01, "backoff_max_s": 0.05, **kwargs}
    return BufferedWriter(store, metrics, **options)


async def wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_writer_keeps_rows_while_down_and_writes_them_all_when_back() -> None:
    store, metrics = FlakyStore(down=True), Metrics()
    writer = writer_for(store, metrics, batch=7)
    task = asyncio.create_task(writer.run())
    try:
        for row in sc.events(50):
            assert writer.add_event(row)
        for step in sc.steps():
            writer.add_step(step)
        await wait_until(lambda: sample(metrics, "tecmon_store_write_errors_total") >= 3)
        assert writer.buffered == 54 and sample(metrics, "tecmon_store_buffered") == 54
        assert sample(metrics, "tecmon_store_up") == 0
        store.down = False
        await wait_until(lambda: writer.buffered == 0)
    finally:
        task.cancel()
    assert store.tables["events"] == sc.events(50)  # nothing lost, nothing doubled, order kept
    assert store.tables["alert_steps"] == sc.steps()
    assert sample(metrics, "tecmon_store_written_total", table="events") == 50
    assert sample(metrics, "tecmon_store_dropped_total", table="events", reason="overflow") == 0
    assert sample(metrics, "tecmon_store_buffered") == 0 and sample(metrics, "tecmon_store_up") == 1


async def test_overflow_drops_oldest_events_first_and_counts_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    store, metrics = FlakyStore(down=True), Metrics()
    writer = writer_for(store, metrics, capacity=10)
    rows = sc.events(15)
    with caplog.at_level(logging.ERROR, logger="gateway.store.writer"):
        for row in rows:
            writer.add_event(row)
        assert writer.add_step(sc.steps()[0])  # an alert record pushes out a raw event
    assert writer.buffered == 10
    assert sample(metrics, "tecmon_store_dropped_total", table="events", reason="overflow") == 6
    assert any("lost" in r.getMessage() for r in caplog.records)
    store.down = False
    assert await writer.flush(timeout_s=2)
    assert store.tables["events"] == rows[6:] and len(store.tables["alert_steps"]) == 1


async def test_overflow_with_only_alert_records_refuses_the_new_row() -> None:
    store, metrics = FlakyStore(down=True), Metrics()
    writer = writer_for(store, metrics, capacity=2)
    assert writer.add_input(sc.inputs()[0]) and writer.add_input(sc.inputs()[1])
    assert not writer.add_attempt(sc.attempts()[0])
    assert sample(metrics, "tecmon_store_dropped_total", table="notification_attempts", reason="overflow") == 1


async def test_a_refused_row_is_isolated_dropped_and_counted_the_rest_written(caplog: pytest.LogCaptureFixture) -> None:
    store, metrics = FlakyStore(refuse={"bad"}), Metrics()
    writer = writer_for(store, metrics, batch=100)
    rows = sc.events(20)
    rows[13] = EventRow("julie", "bed", "bed", 1, T0, T0, "bad")
    for row in rows:
        writer.add_event(row)
    with caplog.at_level(logging.ERROR, logger="gateway.store.writer"):
        assert await writer.flush(timeout_s=2)
    assert store.tables["events"] == rows[:13] + rows[14:]
    assert sample(metrics, "tecmon_store_dropped_total", table="events", reason="refused") == 1
    assert any("refused" in r.getMessage() for r in caplog.records)


async def test_flush_gives_up_after_its_timeout_and_keeps_the_rows(caplog: pytest.LogCaptureFixture) -> None:
    store, metrics = FlakyStore(down=True), Metrics()
    writer = writer_for(store, metrics)
    writer.add_dead_letter(sc.dead_letters()[0])
    with caplog.at_level(logging.ERROR, logger="gateway.store.writer"):
        assert not await writer.flush(timeout_s=0.1)
    assert writer.buffered == 1 and any("unwritten" in r.getMessage() for r in caplog.records)


async def test_cancelled_mid_write_the_batch_goes_back_and_flush_writes_it() -> None:
    store, metrics = FlakyStore(gate=asyncio.Event()), Metrics()
    writer = writer_for(store, metrics, batch=4)
    task = asyncio.create_task(writer.run())
    rows = sc.events(10)
    for row in rows:
        writer.add_event(row)
    await wait_until(lambda: store.calls >= 1)  # a batch is in the database's hands
    task.cancel()  # shutdown
    with pytest.raises(asyncio.CancelledError):
        await task
    assert writer.buffered == 10
    store.gate = None
    assert await writer.flush(timeout_s=2)
    assert store.tables["events"] == rows


async def test_writer_opens_a_store_that_was_down_at_start() -> None:
    store, metrics = FlakyStore(down=True, opened=False), Metrics()
    writer = writer_for(store, metrics)
    task = asyncio.create_task(writer.run())
    try:
        writer.add_event(sc.events(1)[0])
        await wait_until(lambda: sample(metrics, "tecmon_store_write_errors_total") >= 2)
        store.down = False
        await wait_until(lambda: writer.buffered == 0)
    finally:
        task.cancel()
    assert store.opened and len(store.tables["events"]) == 1


async def test_a_full_batch_is_written_without_waiting_for_the_timer() -> None:
    store, metrics = FlakyStore(), Metrics()
    writer = writer_for(store, metrics, flush_every_s=60, batch=5)
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.sleep(0)
        for row in sc.events(5):
            writer.add_event(row)
        await wait_until(lambda: len(store.tables["events"]) == 5, seconds=2)
    finally:
        task.cancel()


async def test_writer_with_real_sqlite() -> None:
    store, metrics = open_store("sqlite:///:memory:"), Metrics()
    await store.open()
    writer = writer_for(store, metrics, batch=100)
    task = asyncio.create_task(writer.run())
    try:
        for row in sc.events(1000):
            writer.add_event(row)
        for row in sc.inputs():
            writer.add_input(row)
        await wait_until(lambda: writer.buffered == 0)
        assert await store.count_events() == 1000 and len(await store.inputs_since(T0)) == 3
    finally:
        task.cancel()
        await store.close()


def test_store_metrics_registered_once_per_registry() -> None:
    metrics = Metrics()
    assert store_metrics(metrics) is store_metrics(metrics)
    BufferedWriter(FlakyStore(), metrics)
    BufferedWriter(FlakyStore(), metrics)  # a second writer does not register twice
    text = metrics.render().decode()
    for name in STORE_METRIC_NAMES:
        assert name.removesuffix("_total") in text


async def test_retention_job_prunes_and_survives_an_unavailable_database() -> None:
    store = open_store("sqlite:///:memory:")
    await store.open()
    now = datetime.now(UTC)
    await store.write_events(sc.events(3, start=now - timedelta(days=100)) + sc.events(2, start=now))
    rounds: list[datetime] = []

    def clock() -> datetime:  # each round of the job reads the clock once: the test counts rounds by it
        rounds.append(datetime.now(UTC))
        return rounds[-1]

    task = asyncio.create_task(run_retention(store, events_days=90, every_s=0.01, now=clock))
    try:
        await eventually_async(lambda: store.count_events(), lambda n: n == 2, "old events were not pruned")
        await store.close()
        closed_at = len(rounds)
        await eventually(lambda: len(rounds) >= closed_at + 3, 30, "the job stopped when the database went")
        assert not task.done()
    finally:
        task.cancel()


async def eventually_async(
    read: Callable[[], Awaitable[int]], holds: Callable[[int], bool], why: str, seconds: float = 30.0
) -> None:
    """`eventually` for a condition that has to be read from the store."""
    deadline = time.monotonic() + seconds
    while not holds(await read()):
        if time.monotonic() > deadline:
            pytest.fail(why)
        await asyncio.sleep(0.01)
