"""One contract, two backends: every test here runs on SQLite and on the real PostgreSQL.

The PostgreSQL-only tests at the end check what only PostgreSQL does: COPY
for events, the BRIN fallback without TimescaleDB, and (with a faked probe,
not a real TimescaleDB) the statements of the hypertable branch.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from alerts.events import Acknowledge, DeliveryFailed, ResolveAlert
from gateway.metrics import Metrics
from gateway.store.base import EventRow, InputRow, StepRow, StoreUnavailable
from gateway.store.cli import register
from gateway.store.migrations import LATEST, POSTGRES, TIMESCALE_PROBE
from gateway.store.postgres import PostgresStore, SqlRunner
from gateway.store.writer import BufferedWriter
from tests import store_contract as sc
from tests.conftest import free_port
from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration
T0 = sc.T0


async def run_cli(argv: list[str]) -> int:
    """`tecmon db ...` through the same `register` the main parser uses (in a thread: it runs
    its own event loop, as it does from the command line)."""
    parser = argparse.ArgumentParser(prog="tecmon")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(await asyncio.to_thread(args.func, args))


# -- schema and migrations -----------------------------------------------------------------


async def test_open_brings_schema_to_latest(backend: Backend) -> None:
    assert await backend.store.schema_version() == LATEST
    assert backend.store.time_layout == ("btree" if backend.name == "sqlite" else "brin")
    assert await backend.store.counts() == dict.fromkeys(
        ["events", "inputs", "alert_steps", "notification_attempts", "dead_letters", "home_configs"], 0)


async def test_open_twice_and_reopen_is_idempotent_and_keeps_rows(backend: Backend) -> None:
    await backend.store.open()  # already open: nothing happens
    await backend.store.write_events(sc.events(5))
    again = backend.another()
    await again.open()
    try:
        assert await again.schema_version() == LATEST
        assert await again.count_events() == 5
    finally:
        await again.close()


async def test_company_mode_is_a_recorded_input_kind(backend: Backend) -> None:
    """Migration 4 lets the inputs table keep company mode starting and ending."""
    rows = [InputRow("julie", "company", "", "Sam", "on", sc.T0),
            InputRow("julie", "company", "", "Julie", "off", sc.T0 + timedelta(minutes=5))]
    await backend.store.write_inputs(rows)
    assert await backend.store.inputs_since(sc.T0) == rows


async def test_two_stores_migrating_at_once_both_succeed(backend: Backend) -> None:
    first, second = backend.another(), backend.another()
    await asyncio.gather(first.open(), second.open())
    try:
        assert await first.schema_version() == await second.schema_version() == LATEST
    finally:
        await first.close()
        await second.close()


async def test_upgrade_command_twice(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_cli(["db", "upgrade", "--database", backend.url]) == 0
    assert await run_cli(["db", "upgrade", "--database", backend.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[1] == f"schema version {LATEST} (latest {LATEST}); events layout: {backend.store.time_layout}"


# -- round trips ---------------------------------------------------------------------------


async def test_events_round_trip(backend: Backend) -> None:
    rows = sc.events(12)
    await backend.store.write_events(rows)
    got = await backend.store.events_since(T0)
    assert got == rows
    assert [r.to_event() for r in got] == [r.to_event() for r in rows]
    battery = next(r for r in got if r.kind == "battery")
    assert battery.to_event().value == battery.value and not isinstance(battery.to_event().value, bool)
    assert all(r.at.utcoffset() == timedelta(0) for r in got)


async def test_inputs_round_trip_and_back_to_engine_inputs(backend: Backend) -> None:
    rows = sc.inputs()
    await backend.store.write_inputs(rows)
    got = await backend.store.inputs_since(T0)
    assert got == rows
    assert [r.to_input() for r in got] == [
        Acknowledge("julie-1", "Sam"), ResolveAlert("julie-1", "Sam", "false alarm: making tea"),
        DeliveryFailed("julie-2", "Night responder"),
    ]


async def test_steps_round_trip(backend: Backend) -> None:
    rows = sc.steps()
    await backend.store.write_steps(rows)
    got = await backend.store.steps_since(T0)
    assert got == rows
    assert [r.late for r in got] == [False, False, True, False]


async def test_raised_alerts_unresolved_are_the_open_ones(backend: Backend) -> None:
    later = T0 + timedelta(minutes=30)
    still_open = StepRow("raised", "julie-2", "julie", "no_motion", later, None, "no movement for 2 hours")
    await backend.store.write_steps([*sc.steps(), still_open])
    every = await backend.store.raised_alerts(["julie"])
    assert [r.alert for r in every] == ["julie-2", "julie-1"]
    assert [r.alert for r in await backend.store.raised_alerts(["julie"], unresolved=True)] == ["julie-2"]
    assert await backend.store.raised_alerts(None, unresolved=True, kind="out_of_bed_too_long") == []


async def test_attempts_round_trip(backend: Backend) -> None:
    rows = sc.attempts()
    await backend.store.write_attempts(rows)
    assert await backend.store.attempts_since(T0) == rows


async def test_dead_letters_round_trip(backend: Backend) -> None:
    rows = sc.dead_letters()
    await backend.store.write_dead_letters(rows)
    assert await backend.store.dead_letters_since(T0) == rows


async def test_other_offsets_come_back_as_the_same_instant(backend: Backend) -> None:
    paris = timezone(timedelta(hours=1))
    row = EventRow("julie", "bed", "bed", 1, T0.astimezone(paris), T0.astimezone(paris), "")
    await backend.store.write_events([row])
    (got,) = await backend.store.events_since(T0)
    assert got == row and got.at.utcoffset() == timedelta(0)


async def test_empty_writes_are_fine(backend: Backend) -> None:
    for write in (backend.store.write_events, backend.store.write_inputs, backend.store.write_steps,
                  backend.store.write_attempts, backend.store.write_dead_letters):
        await write([])
    assert await backend.store.count_events() == 0


# -- ordering --------------------------------------------------------------------------------


async def test_events_since_orders_by_received_at_then_insertion(backend: Backend) -> None:
    later = sc.events(3, start=T0 + timedelta(hours=1))
    earlier = sc.events(3, start=T0)
    same_time = [EventRow("julie", "bed", "bed", i % 2, T0, T0 + timedelta(minutes=30), f"tie-{i}") for i in range(4)]
    for batch in (later, same_time, earlier):
        await backend.store.write_events(batch)
    got = await backend.store.events_since(T0)
    assert got == earlier + same_time + later
    assert await backend.store.events_since(T0 + timedelta(minutes=30)) == same_time + later
    assert await backend.store.events_since(T0 + timedelta(hours=5)) == []


async def test_streaming_in_small_chunks_across_ties(backend: Backend) -> None:
    rows = [EventRow("julie", "bed", "bed", i % 2, T0, T0 + timedelta(seconds=i // 4), str(i)) for i in range(23)]
    await backend.store.write_events(rows)
    chunks = [chunk async for chunk in backend.store.stream_events_since(T0, chunk=3)]
    assert all(len(c) <= 3 for c in chunks)
    assert [r for c in chunks for r in c] == rows


async def test_steps_and_inputs_since_filter_and_order(backend: Backend) -> None:
    await backend.store.write_steps(list(reversed(sc.steps())))
    got = await backend.store.steps_since(T0 + timedelta(minutes=5))
    assert [s.step for s in got] == ["escalated", "resolved"]
    await backend.store.write_inputs(sc.inputs())
    assert [i.kind for i in await backend.store.inputs_since(T0 + timedelta(seconds=30))] == ["resolve", "delivery_failed"]


# -- home configurations ----------------------------------------------------------------------


async def test_config_versions_only_when_content_changes(backend: Backend) -> None:
    s = backend.store
    config: dict[str, Any] = {"home": "julie", "routine": {"night": {"from": "22:00", "to": "07:30"}}}
    assert await s.save_home_config("julie", config, "Ana (coordinator)", "first plan with Julie", T0) == 1
    reordered = {"routine": {"night": {"to": "07:30", "from": "22:00"}}, "home": "julie"}
    assert await s.save_home_config("julie", reordered, "service", "reloaded", T0 + timedelta(hours=1)) == 1
    changed = {**config, "routine": {"night": {"from": "23:00", "to": "07:30"}}}
    assert await s.save_home_config("julie", changed, "Ana (coordinator)", "goes to bed later", T0 + timedelta(days=1)) == 2
    assert await s.save_home_config("bob", config, "Ana (coordinator)", "new home", T0) == 1
    history = await s.home_config_history("julie")
    assert [(v.version, v.saved_by, v.why, v.saved_at) for v in history] == [
        (1, "Ana (coordinator)", "first plan with Julie", T0),
        (2, "Ana (coordinator)", "goes to bed later", T0 + timedelta(days=1)),
    ]
    assert history[0].config == config and history[1].config == changed
    assert await s.home_config_history("nobody") == []


async def test_concurrent_config_saves_get_distinct_versions(backend: Backend) -> None:
    saves = [backend.store.save_home_config("julie", {"n": n}, "api", f"edit {n}", T0) for n in range(6)]
    assert sorted(await asyncio.gather(*saves)) == [1, 2, 3, 4, 5, 6]


async def test_config_history_command(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    await backend.store.save_home_config("julie", {"a": 1, "b": {"c": 1}}, "Ana", "first", T0)
    await backend.store.save_home_config("julie", {"a": 1, "b": {"c": 2}}, "Sam", "later night", T0 + timedelta(days=1))
    assert await run_cli(["db", "config-history", "julie", "--database", backend.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "julie: 2 version(s)"
    assert "by Ana" in out[1] and "first version" in out[1]
    assert "by Sam" in out[2] and "why: later night" in out[2] and "changed: b.c" in out[2]
    assert await run_cli(["db", "config-history", "julie", "--database", backend.url, "--show", "2"]) == 0
    assert '"c": 2' in capsys.readouterr().out


# -- retention -------------------------------------------------------------------------------


async def test_prune_keeps_alert_records_longer_than_raw_events(backend: Backend) -> None:
    s = backend.store
    old, recent = T0 - timedelta(days=100), T0
    await s.write_events(sc.events(4, start=old) + sc.events(3, start=recent))
    await s.write_steps(sc.steps(old) + sc.steps(recent))
    await s.write_inputs(sc.inputs(T0 - timedelta(days=800)) + sc.inputs(recent))
    await s.write_attempts(sc.attempts(old))
    await s.write_dead_letters(sc.dead_letters(T0 - timedelta(days=800)))
    deleted = await s.prune(events_before=T0 - timedelta(days=90), alerts_before=T0 - timedelta(days=730))
    assert deleted == {"events": 4, "inputs": 3, "alert_steps": 0, "notification_attempts": 0, "dead_letters": 2}
    assert await s.count_events() == 3
    assert len(await s.steps_since(old)) == 8 and len(await s.attempts_since(old)) == 2
    assert await s.prune(T0 - timedelta(days=90), T0 - timedelta(days=730)) == dict.fromkeys(deleted, 0)


async def test_prune_command(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(T0.tzinfo)
    await backend.store.write_events(sc.events(2, start=now - timedelta(days=10)) + sc.events(1, start=now))
    assert await run_cli(["db", "prune", "--database", backend.url, "--events-days", "5"]) == 0
    assert '"events": 2' in capsys.readouterr().out
    assert await backend.store.count_events() == 1


async def test_a_refused_row_is_dropped_and_counted_by_the_writer(backend: Backend) -> None:
    """The database's own refusal (a value no column can hold) costs that row only."""
    metrics = Metrics()
    writer = BufferedWriter(backend.store, metrics, batch=50)
    rows = sc.events(20)
    rows[7] = EventRow("julie", "bed", "battery", 2**70, T0, T0, "overflowing value")
    for row in rows:
        writer.add_event(row)
    assert await writer.flush(timeout_s=5)
    assert await backend.store.events_since(T0) == rows[:7] + rows[8:]
    assert metrics.registry.get_sample_value(
        "tecmon_store_dropped_total", {"table": "events", "reason": "refused"}) == 1


# -- PostgreSQL only ---------------------------------------------------------------------------


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with sc.postgres_schema() as url:
        yield url


async def test_postgres_events_are_written_with_copy(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    statements: list[str] = []
    real_copy = psycopg.AsyncCursor.copy

    def spy(self: psycopg.AsyncCursor[Any], statement: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(statement))
        return real_copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "copy", spy)
    store = PostgresStore(pg_url)
    await store.open()
    try:
        await store.write_events(sc.events(1000))
        assert store.copy_rows == 1000 and await store.count_events() == 1000
        assert len(statements) == 1 and statements[0].startswith("COPY events (")
    finally:
        await store.close()


async def test_postgres_without_timescaledb_gets_a_brin_index(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        available = await (await conn.execute(TIMESCALE_PROBE)).fetchone()
        assert available is None, "this test is about the fallback; this PostgreSQL has TimescaleDB"
        rows = await (await conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'events' AND schemaname = current_schema()")).fetchall()
    assert any("USING brin (at)" in r[0] for r in rows), rows
    assert store.time_layout == "brin"


async def test_postgres_reads_events_back_through_the_received_at_index(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        for plan_kind in ("seqscan", "bitmapscan", "sort"):  # an empty table: can the index serve it alone?
            await conn.execute(f"SET enable_{plan_kind} = off")
        plan = await (await conn.execute("EXPLAIN " + POSTGRES.select_since("events"), (T0,))).fetchall()
    assert "Index Scan using events_received" in plan[0][0] and "Sort" not in str(plan), plan


class PretendTimescaleAvailable:
    """A FAKE, not TimescaleDB: answers the availability probe "yes" and records (does not run)
    the statements that would follow, passing every other statement to the real database."""

    def __init__(self, real: SqlRunner) -> None:
        self.real = real
        self.recorded: list[str] = []

    async def fetch_value(self, sql: str) -> Any:
        return 1 if sql == TIMESCALE_PROBE else await self.real.fetch_value(sql)

    async def execute(self, sql: str) -> None:
        if "timescaledb" in sql or "hypertable" in sql or "retention_policy" in sql:
            self.recorded.append(sql)
        else:
            await self.real.execute(sql)


async def test_hypertable_branch_reached_with_a_faked_timescaledb_probe(pg_url: str) -> None:
    fakes: list[PretendTimescaleAvailable] = []

    def wrap(real: SqlRunner) -> SqlRunner:
        fakes.append(PretendTimescaleAvailable(real))
        return fakes[-1]

    store = PostgresStore(pg_url, event_retention_days=30, runner_wrapper=wrap)
    await store.open()
    try:
        assert store.time_layout == "hypertable"
        (fake,) = fakes
        assert fake.recorded == [
            "CREATE EXTENSION IF NOT EXISTS timescaledb",
            "SELECT create_hypertable('events', 'at', chunk_time_interval => INTERVAL '1 day', "
            "if_not_exists => TRUE, migrate_data => TRUE)",
            "SELECT add_retention_policy('events', drop_after => INTERVAL '30 days', if_not_exists => TRUE)",
        ]
        await store.write_events(sc.events(3))  # the rest of the schema was really created
        assert await store.count_events() == 3
        await store.close()
        await store.open()  # already migrated: the probe is not asked again
        assert len(fakes) == 1
    finally:
        await store.close()


async def test_postgres_unreachable_is_store_unavailable() -> None:
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", timeout_s=0.5)
    with pytest.raises(StoreUnavailable):
        await store.open()
    assert not store.is_open
    with pytest.raises(StoreUnavailable):
        await store.write_events(sc.events(1))
