"""SQLite specifics, the row conversions, the CLI helpers, and the buffered writer.

The writer is tested against `FlakyStore`, an in-memory store whose database
can be "down", so outages, backoff, overflow and refused rows take
milliseconds; `tests/integration/test_store_outage.py` repeats the outage
against a real PostgreSQL that is really stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alerts.decisions import AlertInfo, AlertKind, AlertRaised
from alerts.events import EventKind, SensorEvent
from alerts.notify import DeliveryAttempt
from gateway.metrics import Metrics
from gateway.replay import lifecycle_line
from gateway.runtime import DeadLetterRecord
from gateway.store import open_store, sqlite_path
from gateway.store.base import (
    AttemptRow,
    DeadLetterRow,
    EventRow,
    InputRow,
    StepRow,
    StoreUnavailable,
    TableWrites,
)
from gateway.store.cli import changed_paths, redact_url, register
from gateway.store.migrations import LATEST
from gateway.store.postgres import transient
from gateway.store.sqlite import EVENTS_FIRST_PAGE, EVENTS_NEXT_PAGE, SqliteStore
from gateway.store.writer import (
    STORE_METRIC_NAMES,
    BufferedWriter,
    prune_cutoffs,
    run_retention,
    store_metrics,
)
from tests import store_contract as sc
from tests.conftest import eventually

T0 = sc.T0


# -- URLs and backends ------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///tecmon.db", "tecmon.db"), ("sqlite:////var/lib/tecmon/t.db", "/var/lib/tecmon/t.db"),
    ("sqlite:///:memory:", ":memory:"),
])
def test_sqlite_urls(url: str, path: str) -> None:
    assert sqlite_path(url) == path
    store = open_store(url)
    assert isinstance(store, SqliteStore) and store.path == path


def test_backend_chosen_from_url() -> None:
    assert type(open_store("postgresql://tecmon@db:5432/tecmon")).__name__ == "PostgresStore"
    assert type(open_store("postgres://tecmon@db/tecmon")).__name__ == "PostgresStore"
    with pytest.raises(ValueError, match="unsupported scheme 'mysql'"):
        open_store("mysql://x")
    with pytest.raises(ValueError, match="sqlite:///PATH"):
        sqlite_path("sqlite:///")


async def test_file_database_uses_wal_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = SqliteStore(str(path))
    await store.open()
    await store.write_events(sc.events(10))
    await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == [(v,) for v in range(1, LATEST + 1)]
    again = SqliteStore(str(path))
    await again.open()
    assert await again.events_since(T0) == sc.events(10)
    await again.close()


async def test_memory_database_and_closed_store() -> None:
    store = open_store("sqlite:///:memory:")
    await store.open()
    await store.write_steps(sc.steps())
    assert len(await store.steps_since(T0)) == 4
    await store.close()
    await store.close()  # closing twice is harmless
    with pytest.raises(StoreUnavailable):
        await store.write_steps(sc.steps())


async def test_unopenable_file_is_store_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "missing-dir" / "t.db"))
    with pytest.raises(StoreUnavailable):
        await store.open()
    assert not store.is_open


async def test_reading_events_back_searches_the_received_at_index() -> None:
    store = SqliteStore(":memory:")
    await store.open()
    first = await store._query("EXPLAIN QUERY PLAN " + EVENTS_FIRST_PAGE, ("x", 1))
    after = await store._query("EXPLAIN QUERY PLAN " + EVENTS_NEXT_PAGE, ("x", 1, 1))
    await store.close()
    for plan in (first, after):
        assert "SEARCH events USING INDEX events_received" in plan[0][3], plan


async def test_timestamps_stored_as_sortable_utc_text(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "t.db"))
    await store.open()
    await store.write_events(sc.events(1))
    await store.close()
    with sqlite3.connect(tmp_path / "t.db") as raw:
        assert raw.execute("SELECT at FROM events").fetchone()[0] == "2026-01-12T22:00:00.000000+00:00"


# -- rows from the rest of the system ------------------------------------------------------------


def test_rows_require_aware_times() -> None:
    naive = datetime(2026, 1, 12, 22, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        EventRow("h", "bed", "bed", 1, naive, T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        StepRow("raised", "a", "h", "k", naive, None, "")
    with pytest.raises(ValueError, match=r"InputRow\.kind"):
        InputRow("h", "snooze", "a", "Sam", None, T0)  # type: ignore[arg-type]


def test_rows_from_engine_and_shell_objects() -> None:
    event = SensorEvent("julie", "bed", EventKind.BATTERY, 14, T0, "zigbee2mqtt/julie/bed")
    row = EventRow.from_event(event, T0 + timedelta(seconds=1))
    assert (row.kind, row.value, row.received_at) == ("battery", 14, T0 + timedelta(seconds=1))
    assert row.to_event() == event
    door = EventRow.from_event(SensorEvent("julie", "door", EventKind.DOOR, True, T0), T0)
    assert door.value == 1 and door.to_event().value is True

    raised = AlertRaised(AlertInfo("julie-1", "julie", AlertKind.OUT_OF_BED_TOO_LONG), T0, "out of bed 45 min")
    step = StepRow.from_line(lifecycle_line(raised), late=True)
    assert step == StepRow("raised", "julie-1", "julie", "out_of_bed_too_long", T0, None, "out of bed 45 min", True)

    attempt = DeliveryAttempt("julie-1", "Sam", "ntfy://…", 1, False, "timeout", T0, 10.0)
    assert AttemptRow.from_attempt(attempt) == AttemptRow("julie-1", "Sam", "ntfy://…", 1, False, "timeout", T0, 10.0)
    record = DeadLetterRecord(T0, "zigbee2mqtt/x/bed", "{}", "unknown home", "unknown_home")
    assert DeadLetterRow.from_record(record) == DeadLetterRow(T0, "zigbee2mqtt/x/bed", "{}", "unknown home", "unknown_home")


@pytest.mark.parametrize(("error", "retry"), [
    (psycopg.errors.AdminShutdown, True), (psycopg.errors.ReadOnlySqlTransaction, True),
    (psycopg.errors.DeadlockDetected, True), (psycopg.errors.LockNotAvailable, True),
    (psycopg.errors.NumericValueOutOfRange, False), (psycopg.errors.UniqueViolation, False),
])
def test_postgres_errors_worth_retrying(error: type[psycopg.Error], retry: bool) -> None:
    assert transient(error("x")) is retry


def test_cli_helpers() -> None:
    assert redact_url("postgresql://tecmon:s3cret@db:5432/tecmon") == "postgresql://tecmon:***@db:5432/tecmon"
    assert redact_url("sqlite:///tecmon.db") == "sqlite:///tecmon.db"
    before = {"routine": {"night": {"from": "22:00"}, "up_by": "10:30"}, "contacts": [1]}
    after = {"routine": {"night": {"from": "23:00"}}, "contacts": [1, 2]}
    assert changed_paths(before, after) == ["contacts", "routine.night.from", "routine.up_by"]
    assert prune_cutoffs(T0, 90, 730) == (T0 - timedelta(days=90), T0 - timedelta(days=730))
    with pytest.raises(ValueError):
        prune_cutoffs(T0, 0, 730)


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


# -- `tecmon db` on SQLite ---------------------------------------------------------------------


def db_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tecmon")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["db", *argv])
    return int(args.func(args))


def test_db_commands_on_a_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert db_cli(["status", "--database", url]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["schema_version"] == status["latest"] == LATEST and status["events_layout"] == "btree"
    assert status["rows"]["events"] == 0

    async def save() -> None:
        store = open_store(url)
        await store.open()
        await store.save_home_config("julie", {"home": "julie"}, "Ana", "first", T0)
        await store.close()

    asyncio.run(save())
    assert db_cli(["config-history", "julie", "--database", url, "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["version"], line["saved_by"], line["config"]) == (1, "Ana", {"home": "julie"})
    assert db_cli(["config-history", "julie", "--database", url, "--show", "9"]) == 2
    assert "no version 9" in capsys.readouterr().err


def test_db_commands_report_bad_urls_and_unreachable_databases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert db_cli(["upgrade", "--database", "mysql://x"]) == 2
    assert "unsupported scheme" in capsys.readouterr().err
    monkeypatch.setenv("TECMON_DATABASE_URL", f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    assert db_cli(["upgrade"]) == 1
    assert "cannot use sqlite:///" in capsys.readouterr().err
    assert db_cli(["prune", "--database", "sqlite:///:memory:", "--events-days", "0"]) == 2
