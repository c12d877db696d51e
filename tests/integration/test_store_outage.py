"""The database goes away and comes back: nothing the writer held is lost.

A private PostgreSQL cluster (initdb/pg_ctl in a temp dir, on a free port) is
really stopped and started; the shared one on 5432 is never touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from gateway.metrics import Metrics
from gateway.store.postgres import PostgresStore
from gateway.store.writer import BufferedWriter
from tests import store_contract as sc
from tests.conftest import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster() -> Iterator[sc.PrivatePostgres]:
    pg = sc.PrivatePostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.remove()


@pytest.fixture
async def store(cluster: sc.PrivatePostgres) -> AsyncIterator[PostgresStore]:
    """A fresh schema on the private cluster, with a short pool timeout so retries come quickly."""
    async with sc.postgres_schema(cluster.url) as url:
        s = PostgresStore(url, timeout_s=0.5)
        await s.open()
        yield s
        await s.close()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels or None) or 0.0


def writer_for(store: PostgresStore, metrics: Metrics, **kwargs: Any) -> BufferedWriter:
    return BufferedWriter(store, metrics, flush_every_s=0.05, backoff_min_s=0.05, backoff_max_s=0.5,
                          batch=200, **kwargs)


async def in_thread(fn: Callable[[], None]) -> None:
    await asyncio.to_thread(fn)


async def test_writer_buffers_through_an_outage_and_loses_nothing(
    cluster: sc.PrivatePostgres, store: PostgresStore
) -> None:
    metrics = Metrics()
    writer = writer_for(store, metrics)
    rows = sc.events(1500)
    task = asyncio.create_task(writer.run())
    try:
        for row in rows[:100]:
            writer.add_event(row)
        await eventually(lambda: writer.buffered == 0, 10, "condition not reached in time")
        await in_thread(cluster.stop)
        for row in rows[100:]:
            assert writer.add_event(row)  # returns at once, database or not
        for step in sc.steps():
            writer.add_step(step)
        await eventually(lambda: sample(metrics, "tecmon_store_write_errors_total") >= 2, 10, "condition not reached in time")
        assert writer.buffered == 1404 and sample(metrics, "tecmon_store_buffered") == 1404
        await in_thread(cluster.start)
        await eventually(lambda: writer.buffered == 0, 20, "condition not reached in time")
    finally:
        task.cancel()
    assert await store.count_events() == len(rows)
    assert await store.events_since(sc.T0) == rows
    assert await store.steps_since(sc.T0) == sc.steps()
    assert sample(metrics, "tecmon_store_dropped_total", table="events", reason="overflow") == 0


async def test_overflow_while_down_is_counted_and_the_rest_arrives(
    cluster: sc.PrivatePostgres, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    writer = writer_for(store, metrics, capacity=50)
    rows = sc.events(80)
    await in_thread(cluster.stop)
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.store.writer"):
            for row in rows:
                writer.add_event(row)
        assert writer.buffered == 50
        assert sample(metrics, "tecmon_store_dropped_total", table="events", reason="overflow") == 30
        assert any("lost" in r.getMessage() for r in caplog.records)
        assert not await writer.flush(timeout_s=0.3)  # still down: kept, not lost
    finally:
        await in_thread(cluster.start)
    assert await writer.flush(timeout_s=20)
    assert await store.events_since(sc.T0) == rows[30:]


async def test_writer_opens_the_store_once_the_database_is_up(cluster: sc.PrivatePostgres) -> None:
    async with sc.postgres_schema(cluster.url) as url:
        await in_thread(cluster.stop)
        store = PostgresStore(url, timeout_s=0.5)  # the service started while the database was down
        metrics = Metrics()
        writer = writer_for(store, metrics)
        task = asyncio.create_task(writer.run())
        try:
            for row in sc.events(20):
                writer.add_event(row)
            await eventually(lambda: sample(metrics, "tecmon_store_write_errors_total") >= 1, 10, "condition not reached in time")
            assert not store.is_open
            await in_thread(cluster.start)
            await eventually(lambda: writer.buffered == 0, 20, "condition not reached in time")
            assert await store.count_events() == 20
        finally:
            task.cancel()
            await store.close()
