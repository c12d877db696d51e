"""Taking snapshots of every home's engine state, so a restart replays minutes, not a day.

Every `snapshot_every_s` (and at a clean stop) each home whose state changed
since its last snapshot is written to the store (`home_snapshots`); the
others only have their snapshot's `through` moved on. A snapshot is exact
about where it stands, which is what keeps recovery exact:

- It is taken between two steps of the event loop (no await while a chunk of
  homes is serialized), at `through` = the clock's reading then. Every message
  is stamped and applied without an await in between, so whatever was applied
  before is stamped at or before `through`, and whatever comes after, after it.
- A home with a deadline already due is left for the next round: every
  decision after a snapshot then carries a time after `through`, which is how
  recovery tells the steps to compare from the ones the snapshot already holds.
- It is written only once the decisions taken before it are in the record
  (the outbox is empty and the writer has flushed), so a crash can never leave
  a snapshot that holds an alert step the record does not.

Versioned by `engine_version()` (the engine's code and the snapshot layout)
and by `routine_of()` (the home's configuration): recovery ignores a
snapshot that fits neither and replays that home in full.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Protocol

from alerts import snapshot
from alerts.engine import next_deadline
from gateway.clock import Clock
from gateway.runtime import HomeRuntime, Runtime
from gateway.store.base import SnapshotRow, StoreUnavailable

log = logging.getLogger("tecmon.snapshots")

CHUNK = 500  # homes serialized per turn of the event loop: about 15 ms the safety path waits
NOT_ENGINE = {"notify.py", "messages.py", "describe.py"}  # the shell's words, not the engine's decisions


@cache
def engine_version() -> str:
    """The snapshot layout plus a digest of the engine's code: a new engine never reads an old state."""
    digest = hashlib.sha256(snapshot.LAYOUT.encode())
    folder = Path(snapshot.__file__).parent
    for path in sorted(folder.glob("*.py")):
        if path.name not in NOT_ENGINE:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{snapshot.LAYOUT}:{digest.hexdigest()[:16]}"


def routine_of(home: HomeRuntime) -> str:
    """A digest of the configuration the home runs on (service contacts included)."""
    return hashlib.sha256(home.config_json.encode()).hexdigest()[:32]


@dataclass
class SnapshotReport:
    written: int = 0
    confirmed: int = 0
    put_off: int = 0  # a deadline was due: left for the next round
    seconds: float = 0.0


class SnapshotSink(Protocol):
    """Where snapshots go: the store (one box) or the fenced writer (`ingest: nats`)."""

    async def write_snapshots(self, rows: Sequence[SnapshotRow]) -> None: ...

    async def confirm_snapshots(self, homes: Sequence[str], through: datetime) -> None: ...


class Record(Protocol):
    """The writer whose rows must be stored before a snapshot is."""

    async def flush_once(self) -> bool: ...


class SnapshotTaker:
    def __init__(self, runtime: Runtime, store: SnapshotSink, clock: Clock,
                 writer: Record | None = None, engine: str | None = None) -> None:
        self.runtime, self.store, self.clock, self.writer = runtime, store, clock, writer
        self.engine = engine or engine_version()
        self._kept: dict[str, int] = {}  # home -> hash of what its stored snapshot says

    async def take(self) -> SnapshotReport:
        """One round over every home; raises `StoreUnavailable` if the database is away."""
        began = time.perf_counter()
        report = SnapshotReport()
        homes = list(self.runtime.homes)
        for start in range(0, len(homes), CHUNK):
            await self._quiet()
            through, rows, unchanged, put_off, kept = self._capture(homes[start:start + CHUNK])
            if self.writer is not None and not await self.writer.flush_once():
                raise StoreUnavailable("the record could not be written: no snapshot this round")
            await self.store.write_snapshots(rows)
            await self.store.confirm_snapshots(unchanged, through)
            self._kept.update(kept)
            report.written += len(rows)
            report.confirmed += len(unchanged)
            report.put_off += put_off
        report.seconds = time.perf_counter() - began
        return report

    def forget(self, homes: Iterable[str]) -> None:
        """These homes' stored snapshots may have been written by another instance since:
        the next round writes them in full rather than only moving `through` on."""
        for home in homes:
            self._kept.pop(home, None)

    async def _quiet(self) -> None:
        """Until every decision already taken has gone to the dispatcher (and so to the record)."""
        while not self.runtime.outbox.empty():
            await asyncio.sleep(0.01)

    def _capture(
        self, homes: list[str]
    ) -> tuple[datetime, list[SnapshotRow], list[str], int, dict[str, int]]:
        """Serialize a chunk of homes at one instant, with no await: see the module docstring."""
        through = self.clock.now()
        rows: list[SnapshotRow] = []
        unchanged: list[str] = []
        kept: dict[str, int] = {}
        put_off = 0
        for home in homes:
            runtime = self.runtime.homes.get(home)
            if runtime is None or runtime.state.clock is None:
                continue
            due = next_deadline(runtime.state)
            if due is not None and due <= through:
                put_off += 1
                continue
            routine, text = routine_of(runtime), snapshot.dumps(runtime.state)
            digest = hash((routine, text))
            if self._kept.get(home) == digest:
                unchanged.append(home)
                continue
            rows.append(SnapshotRow(home, self.engine, routine, through, text))
            kept[home] = digest
        return through, rows, unchanged, put_off, kept

    async def run(self, every_s: float) -> None:
        """Take a round every `every_s` until cancelled; a database away skips a round."""
        while True:
            await asyncio.sleep(every_s)
            try:
                report = await self.take()
            except StoreUnavailable as exc:
                log.warning("no snapshot this round: %s", exc)
                continue
            log.info("snapshots: %d written, %d unchanged, %d put off (a deadline due) in %.2fs",
                     report.written, report.confirmed, report.put_off, report.seconds)
