"""Shared helpers for the storage tests: PostgreSQL to test against, and sample rows.

The shared PostgreSQL (127.0.0.1:5432, database `test`, trust auth) is
started if it is installed but stopped; if it cannot be reached the test
fails, never skips. Each test gets its own schema, dropped afterwards, so runs
never see each other's rows. Tests that stop the database start a private
cluster of their own (`PrivatePostgres`) and never touch the shared one.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from gateway.store.base import AttemptRow, DeadLetterRow, EventRow, InputRow, SnapshotRow, StepRow
from gateway.store.bench import with_search_path
from tests.conftest import free_port, port_open, wait_for_port

SHARED_PG_URL = os.environ.get("TECMON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 1, 12, 22, 0, tzinfo=UTC)


def ensure_shared_postgres() -> None:
    if not port_open("127.0.0.1", 5432):
        versions = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
        for version in versions:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                           check=False, capture_output=True)
        wait_for_port("127.0.0.1", 5432, 15)
    if not port_open("127.0.0.1", 5432):
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started")


@asynccontextmanager
async def postgres_schema(base_url: str = SHARED_PG_URL) -> AsyncIterator[str]:
    """A URL whose connections see only a fresh schema of their own."""
    ensure_shared_postgres()
    schema = f"tecmon_t_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(base_url, autocommit=True) as admin:
        await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(base_url, schema)
    finally:  # a new connection: the test may have restarted the server meanwhile
        async with await psycopg.AsyncConnection.connect(base_url, autocommit=True) as admin:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")


def pg_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"),
                   key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    if not found:
        pytest.fail(f"{tool} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root; run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class PrivatePostgres:
    """A throw-away cluster on a free port that a test may stop and start at will."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tecmon-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(_as_postgres(list(argv)), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"{argv[0]} failed: {done.stdout}\n{done.stderr}")

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(pg_bin("initdb"), "-D", str(self.directory / "data"), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
        self._run(pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-l", str(self.directory / "log"),
                  "-o", options, "-w", "-t", "30", "start")
        if not wait_for_port("127.0.0.1", self.port, 10):
            pytest.fail(f"private PostgreSQL did not start on port {self.port}")

    def stop(self) -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.directory / "data" / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# -- sample rows -------------------------------------------------------------------------


def events(count: int, start: datetime = T0, home: str = "julie") -> list[EventRow]:
    kinds = (("bed", "bed"), ("hall-motion", "motion"), ("front-door", "door"), ("bed", "battery"))
    rows = []
    for i in range(count):
        device, kind = kinds[i % len(kinds)]
        at = start + timedelta(seconds=i)
        value = 87 - i % 10 if kind == "battery" else i % 2
        rows.append(EventRow(home, device, kind, value, at, at + timedelta(milliseconds=250), f"zigbee2mqtt/{home}/{device}"))
    return rows


def inputs(start: datetime = T0) -> list[InputRow]:
    return [
        InputRow("julie", "ack", "julie-1", "Sam", None, start),
        InputRow("julie", "resolve", "julie-1", "Sam", "false alarm: making tea", start + timedelta(minutes=1)),
        InputRow("julie", "delivery_failed", "julie-2", "Night responder", None, start + timedelta(minutes=2)),
    ]


def steps(start: datetime = T0) -> list[StepRow]:
    return [
        StepRow("raised", "julie-1", "julie", "out_of_bed_too_long", start, None, "out of bed for 45 minutes"),
        StepRow("notified", "julie-1", "julie", "out_of_bed_too_long", start, "Sam (daughter)", "out of bed"),
        StepRow("escalated", "julie-1", "julie", "out_of_bed_too_long", start + timedelta(minutes=10),
                "Night responder", "no answer from Sam", late=True),
        StepRow("resolved", "julie-1", "julie", "out_of_bed_too_long", start + timedelta(minutes=12), "Sam",
                "false alarm: making tea"),
    ]


def attempts(start: datetime = T0) -> list[AttemptRow]:
    return [
        AttemptRow("julie-1", "Sam (daughter)", "ntfy://…", 1, False, "timed out after 10s", start, 10.0),
        AttemptRow("julie-1", "Sam (daughter)", "ntfy://…", 2, True, None, start + timedelta(seconds=11), 0.125),
    ]


def dead_letters(start: datetime = T0) -> list[DeadLetterRow]:
    return [
        DeadLetterRow(start, "zigbee2mqtt/unknown/bed", '{"occupancy": true}', "unknown home 'unknown'", "unknown_home"),
        DeadLetterRow(start + timedelta(seconds=1), "zigbee2mqtt/julie/bed", "not json ü \u00e9", "payload is not JSON",
                      "undecodable"),
    ]


def snapshots(through: datetime = T0, engine: str = "engine-1") -> list[SnapshotRow]:
    return [
        SnapshotRow("julie", engine, "routine-a", through, '{"clock":"2026-01-12T22:00:00+00:00"}'),
        SnapshotRow("bob", engine, "routine-b", through + timedelta(seconds=1), '{"clock":null,"ü":"é"}'),
    ]
