"""The snapshot contract (migration 5), on SQLite and on the real PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from gateway.store.base import EventRow
from gateway.store.migrations import LATEST
from tests import store_contract as sc
from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration
T0 = sc.T0


async def test_migration_5_adds_the_snapshot_table(backend: Backend) -> None:
    assert LATEST >= 5
    assert await backend.store.snapshots() == []


async def test_snapshots_round_trip_and_a_newer_one_replaces_the_older(backend: Backend) -> None:
    rows = sc.snapshots()
    await backend.store.write_snapshots(rows)
    assert sorted(await backend.store.snapshots(), key=lambda r: r.home) == sorted(rows, key=lambda r: r.home)
    newer = replace(rows[0], engine="engine-2", routine="routine-c", through=T0 + timedelta(minutes=5),
                    state='{"clock":"2026-01-12T22:05:00+00:00"}')
    await backend.store.write_snapshots([newer])
    got = {r.home: r for r in await backend.store.snapshots()}
    assert got == {"julie": newer, "bob": rows[1]}
    assert got["julie"].through.utcoffset() == timedelta(0)


async def test_empty_snapshot_writes_are_fine(backend: Backend) -> None:
    await backend.store.write_snapshots([])
    await backend.store.confirm_snapshots([], T0)
    assert await backend.store.snapshots() == []


async def test_confirming_moves_through_on_and_never_back(backend: Backend) -> None:
    rows = sc.snapshots()
    await backend.store.write_snapshots(rows)
    later = T0 + timedelta(minutes=5)
    await backend.store.confirm_snapshots(["julie", "nobody"], later)
    await backend.store.confirm_snapshots(["bob"], T0 - timedelta(minutes=5))  # older: ignored
    got = {r.home: r for r in await backend.store.snapshots()}
    assert got == {"julie": replace(rows[0], through=later), "bob": rows[1]}


async def test_many_homes_at_once(backend: Backend) -> None:
    rows = [replace(sc.snapshots()[0], home=f"home-{i}") for i in range(2500)]
    await backend.store.write_snapshots(rows)
    await backend.store.confirm_snapshots([r.home for r in rows], T0 + timedelta(seconds=30))
    got = await backend.store.snapshots()
    assert len(got) == 2500 and {r.through for r in got} == {T0 + timedelta(seconds=30)}
    pages = [len(page) async for page in backend.store.stream_snapshots(chunk=1000)]
    assert pages == [1000, 1000, 500]


async def test_home_events_since_only_those_homes_in_applied_order(backend: Backend) -> None:
    julie, bob, ann = sc.events(6, home="julie"), sc.events(6, home="bob"), sc.events(6, home="ann")
    ties = [EventRow("bob", "bed", "bed", i % 2, T0, T0 + timedelta(seconds=2), f"tie-{i}") for i in range(3)]
    for batch in (julie, bob, ann, ties):
        await backend.store.write_events(batch)
    since = T0 + timedelta(seconds=2)
    got = [r async for chunk in backend.store.stream_home_events_since(["julie", "bob"], since, chunk=2)
           for r in chunk]
    expected = sorted([r for r in julie + bob if r.received_at >= since] + ties, key=lambda r: r.received_at)
    assert got == expected
    assert [r async for c in backend.store.stream_home_events_since([], T0) for r in c] == []
