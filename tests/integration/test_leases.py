"""Partition leases on the real PostgreSQL: who is taken for frozen, and who is not.

The instance judging the others has a lease of 0.3 s, and the test waits
until the database itself says the silent one is older than that: a slow
machine only makes it older, so what is checked is the decision, not the
machine's speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from gateway.cluster_store import FencedWriter
from gateway.leases import LeaseManager, application_name
from gateway.partitions import partition_of
from gateway.store import open_store
from gateway.store.base import EventRow

pytestmark = pytest.mark.integration
PARTITIONS = 4
SHORT_LEASE_S = 0.3


@pytest.fixture
async def url(database: str) -> AsyncIterator[str]:
    store = open_store(database)
    await store.open()  # the migrations make the lease tables
    await store.close()
    yield database


async def until_silent(url: str, instance: str) -> None:
    """Until the instance's last renewal is older than the short lease, by the database's clock."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            cur = await conn.execute("SELECT now() - seen_at > make_interval(secs => %s) FROM cluster_instances "
                                     "WHERE instance = %s", (SHORT_LEASE_S, instance))
            row = await cur.fetchone()
            if row is not None and row[0]:
                return
            await asyncio.sleep(0.05)


async def steps_until_all_held(manager: LeaseManager, seconds: float = 30.0) -> None:
    """A terminated backend lets its locks go a moment later: step until they are taken."""
    given_up = time.monotonic() + seconds
    while set(manager.held) != set(range(PARTITIONS)):
        assert time.monotonic() < given_up, f"{manager.instance} holds only {sorted(manager.held)}"
        await manager.step()
        await asyncio.sleep(0.05)


async def test_an_instance_that_stopped_renewing_is_ended_and_its_partitions_taken(url: str) -> None:
    frozen, live = LeaseManager(url, "a", PARTITIONS), LeaseManager(url, "b", PARTITIONS, SHORT_LEASE_S)
    try:
        await frozen.open()
        await frozen.step()
        assert set(frozen.held) == set(range(PARTITIONS))
        await live.open()
        await until_silent(url, "a")  # connected, holding every lock, renewing nothing
        await steps_until_all_held(live)
        assert await frozen.renew() == []  # its connection was ended: nothing renews
        taken, lost = await frozen.step()
        assert (taken, sorted(lost)) == ([], list(range(PARTITIONS)))
    finally:
        await live.close()
        await frozen.close()


async def test_a_process_restarted_under_the_same_name_is_not_ended_for_its_predecessor(url: str) -> None:
    """The new process's connection opened after the old one's last renewal: it is not the frozen one."""
    old, other = LeaseManager(url, "a", PARTITIONS), LeaseManager(url, "b", PARTITIONS, SHORT_LEASE_S)
    await old.open()
    await old.step()
    await old._conn.close()  # type: ignore[union-attr]  # killed: its connection is gone, its row stays
    async with await psycopg.AsyncConnection.connect(
            url, autocommit=True, application_name=application_name("a")) as newcomer:
        try:
            await until_silent(url, "a")  # the new process has connected but not yet registered
            await other.open()
            await steps_until_all_held(other)
            await other.step()
            assert (await (await newcomer.execute("SELECT 1")).fetchone()) == (1,)
        finally:
            await other.close()


async def test_a_newly_started_instance_counts_as_live_at_once_and_gets_its_share(url: str) -> None:
    first, second = LeaseManager(url, "a", PARTITIONS), LeaseManager(url, "b", PARTITIONS)
    try:
        await first.open()
        await first.step()
        await second.open()  # registered as it connects, before its first heartbeat
        await first.step()
        assert first.leaving == [1, 3]
        for partition in first.leaving:
            await first.release(partition)
        await second.step()
        assert (set(first.held), set(second.held)) == ({0, 2}, {1, 3})
    finally:
        await second.close()
        await first.close()


async def test_renewal_finds_a_partition_another_instance_took_and_lets_it_go(url: str) -> None:
    manager = LeaseManager(url, "a", PARTITIONS)
    try:
        await manager.open()
        await manager.step()
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("UPDATE partition_leases SET epoch = epoch + 1, owner = 'b' WHERE partition = 2")
        assert await manager.renew() == [2]
        assert set(manager.held) == {0, 1, 3}
        assert not manager.valid(2)
    finally:
        await manager.close()


async def stored_events(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM events")).fetchone()
        return int(row[0]) if row else 0


async def until_events(url: str, count: int, seconds: float = 30.0) -> None:
    given_up = time.monotonic() + seconds
    while await stored_events(url) < count:
        assert time.monotonic() < given_up, f"fewer than {count} events were stored"
        await asyncio.sleep(0.05)


async def test_the_fenced_writer_keeps_its_rows_and_goes_on_when_its_connection_is_ended(url: str) -> None:
    """A database restart, or another instance ending this one's backends: the writer is not lost with them."""
    home = next(h for h in (f"home-{i}" for i in range(100)) if partition_of(h, PARTITIONS) == 0)
    at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("INSERT INTO partition_leases (partition, epoch, owner) VALUES (0, 1, 'a')")
    writer = FencedWriter(url, PARTITIONS, application_name("a"), flush_every_s=0.05)
    writer.own(0, epoch=1, checkpoint=0)
    running = asyncio.create_task(writer.run())
    try:
        writer.add_event(EventRow(home, "bed", "bed", 1, at, at))
        await until_events(url, 1)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE application_name = %s AND datname = current_database()",
                               (application_name("a"),))
        writer.add_event(EventRow(home, "bed", "bed", 0, at + timedelta(minutes=1), at + timedelta(minutes=1)))
        await until_events(url, 2)
        assert not running.done()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await writer.close()
