"""The SQLite store, the rows every store writes, and `tecmon db` on a SQLite file.

The URL chooses the backend; a SQLite file uses WAL, keeps its schema across a
restart and stores times as sortable UTC text. Rows are made from the engine's
and the service's own objects and refuse naive times; which PostgreSQL errors
are worth a retry is told apart without a server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from alerts.decisions import AlertInfo, AlertKind, AlertRaised
from alerts.events import EventKind, SensorEvent
from alerts.notify import DeliveryAttempt
from gateway.replay import lifecycle_line
from gateway.runtime import DeadLetterRecord
from gateway.store import open_store, sqlite_path
from gateway.store.base import AttemptRow, DeadLetterRow, EventRow, InputRow, StepRow, StoreUnavailable
from gateway.store.cli import changed_paths, redact_url, register
from gateway.store.migrations import LATEST
from gateway.store.postgres import transient
from gateway.store.sqlite import EVENTS_FIRST_PAGE, EVENTS_NEXT_PAGE, SqliteStore
from gateway.store.writer import prune_cutoffs
from tests import store_contract as sc
from tests.store_contract import T0

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
