"""Gateway instances as processes of their own (`tecmon serve`), to kill, freeze and read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import yaml

from tests.conftest import free_port


@dataclass
class Gateway:
    name: str
    root: Path
    homes: Path
    servers: list[str]
    database: str
    partitions: int
    lease_s: float = 6.0  # a busy machine may starve an instance for a few seconds; it must not lose its lease
    api_port: int = field(default_factory=free_port)
    extra: dict[str, object] = field(default_factory=dict)  # more settings (snapshot_every_s, ...)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.root / f"{self.name}.log"

    def start(self) -> None:
        config = self.root / f"{self.name}.yaml"
        config.write_text(yaml.safe_dump({
            "ingest": "nats",
            "nats": {"servers": self.servers, "partitions": self.partitions, "instance": self.name,
                     "lease_s": self.lease_s},
            "homes": [str(self.homes)], "database_url": self.database,
            "api": {"host": "127.0.0.1", "port": self.api_port},
            "notify": {"timeout_s": 5, "retries": 0}, "config_poll_s": 60, "log_level": "INFO",
            **self.extra,
        }))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)],
                                         stdout=out, stderr=subprocess.STDOUT, env=env)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def owners(database: str) -> dict[int, str | None]:
    """Partition -> the instance that last took it (its lease may have lapsed since)."""
    try:
        with psycopg.connect(database) as conn:
            rows = conn.execute("SELECT partition, owner FROM partition_leases ORDER BY partition").fetchall()
    except psycopg.errors.UndefinedTable:
        return {}  # no instance has migrated the database yet
    return {int(p): o for p, o in rows}


def scalar(database: str, sql: str) -> int:
    try:
        with psycopg.connect(database) as conn:
            row = conn.execute(sql).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row and row[0] is not None else 0


def wait_until(condition: object, seconds: float, why: str) -> float:
    """Poll `condition()` until true; returns the seconds it took (for reporting, never asserted)."""
    import pytest

    began = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - began > seconds:
            pytest.fail(why)
        time.sleep(0.05)
    return time.monotonic() - began
