"""Fenced, checkpointed writes: what a partition's owner keeps, in one transaction per flush.

In `ingest: nats` this replaces the buffered writer as the runtime's and the
dispatcher's recorder. Rows are buffered per partition (by the home they
belong to); a flush of a partition is one transaction that first moves the
partition's checkpoint `WHERE epoch = <the lease's epoch>` (which also locks
the row, so a takeover's epoch bump waits for it), then inserts the rows. No
row matched means the lease was lost: the transaction is rolled back and the
partition's buffer dropped; the new owner consumes the stream again from the
checkpoint that was stored with the last rows that were, so nothing is lost
or stored twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from alerts.lifecycle import home_of
from gateway.cluster_config import mqtt_topic_of
from gateway.partitions import partition_of
from gateway.store.base import (
    PRUNED_TABLES,
    AttemptRow,
    DeadLetterRow,
    EventRow,
    InputRow,
    SnapshotRow,
    StepRow,
    StoreUnavailable,
    row_getter,
)
from gateway.store.migrations import COLUMNS, POSTGRES, SINCE_COLUMN
from gateway.store.snapshots import SELECT as SNAPSHOT_SELECT
from gateway.store.snapshots import UPSERT as SNAPSHOT_UPSERT

log = logging.getLogger("tecmon.cluster_store")
Conn = psycopg.AsyncConnection[Any]
BACKOFF_MAX_S = 5.0  # a database back from a restart is written to within this
_GETTERS = {table: row_getter(table) for table in PRUNED_TABLES}
_INSERTS = {table: POSTGRES.insert(table) for table in PRUNED_TABLES}


class Fenced(RuntimeError):
    """The partition's lease was lost: this instance may no longer write or notify for it."""


@dataclass
class _Pending:
    epoch: int
    checkpoint: int
    since: datetime | None = None  # when this instance took the partition (its clock)
    rows: dict[str, list[Any]] = field(default_factory=lambda: {t: [] for t in PRUNED_TABLES})

    def count(self) -> int:
        return sum(len(r) for r in self.rows.values())


def dead_letter_home(topic: str) -> str:
    """The home token of a dead letter's topic (`prefix/home/...`), or the topic itself."""
    parts = (mqtt_topic_of(topic) if topic.startswith("tecmon.in.") else topic).split("/")
    return parts[1] if len(parts) > 1 else topic


class FencedWriter:
    """A recorder per owned partition; `flush(p)` is the one fenced transaction."""

    def __init__(self, url: str, partitions: int, application_name: str,
                 flush_every_s: float = 0.1, on_fenced: Callable[[int], None] = lambda p: None) -> None:
        self.url, self.partitions, self.application_name = url, partitions, application_name
        self.flush_every_s = flush_every_s
        self.on_fenced = on_fenced
        self.store_up = False
        self._pending: dict[int, _Pending] = {}
        self._conn: Conn | None = None
        self._lock = asyncio.Lock()

    # -- ownership -----------------------------------------------------------------------

    def own(self, partition: int, epoch: int, checkpoint: int, since: datetime | None = None) -> None:
        self._pending[partition] = _Pending(epoch, checkpoint, since)

    def disown(self, partition: int) -> None:
        self._pending.pop(partition, None)

    def checkpoint(self, partition: int, seq: int) -> None:
        """The rows added since were caused by stream messages up to `seq`."""
        pending = self._pending.get(partition)
        if pending is not None:
            pending.checkpoint = max(pending.checkpoint, seq)

    # -- the recorder interface of the runtime and the dispatcher -------------------------

    def add_event(self, row: EventRow) -> bool:
        return self._add(row.home, "events", row)

    def add_input(self, row: InputRow) -> bool:
        return self._add(row.home, "inputs", row)

    def add_step(self, row: StepRow) -> bool:
        return self._add(row.home, "alert_steps", row)

    def add_attempt(self, row: AttemptRow) -> bool:
        return self._add(home_of(row.alert), "notification_attempts", row)

    def add_dead_letter(self, row: DeadLetterRow) -> bool:
        return self._add(dead_letter_home(row.topic), "dead_letters", row)

    def _add(self, home: str, table: str, row: Any) -> bool:
        pending = self._pending.get(partition_of(home, self.partitions))
        if pending is None:
            return False  # not ours (any more): the owner records it
        pending.rows[table].append(row)
        return True

    @property
    def buffered(self) -> int:
        return sum(p.count() for p in self._pending.values())

    # -- writing -------------------------------------------------------------------------

    async def run(self) -> None:
        """Flush every owned partition on a beat; while the database is away, keep the rows and retry."""
        backoff = self.flush_every_s
        while True:
            await asyncio.sleep(backoff)
            try:
                await self.flush_all()
                backoff = self.flush_every_s
            except StoreUnavailable as exc:
                log.warning("store: database unavailable (%s); %d rows kept, retrying", exc, self.buffered)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except Exception:  # a bug must not end the task that keeps the record
                log.exception("store: unexpected error while writing; will retry")
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def flush(self, timeout_s: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self.flush_all(), timeout_s)
        except (TimeoutError, StoreUnavailable):
            return False
        return self.buffered == 0

    async def flush_once(self) -> bool:
        """Every owned partition's rows stored (what a snapshot round waits for first)."""
        return await self.flush()

    async def flush_all(self) -> None:
        for partition in list(self._pending):
            if partition not in self._pending:
                continue  # handed over meanwhile, its rows stored by the hand-over
            try:
                await self.flush_partition(partition)
            except Fenced:
                self.on_fenced(partition)

    async def flush_partition(self, partition: int) -> None:
        """Store the partition's rows and checkpoint now, or raise `Fenced` (rows dropped)."""
        async with self._lock:
            pending = self._pending.get(partition)
            if pending is None:
                raise Fenced(f"partition {partition} is not owned here")
            rows, pending.rows = pending.rows, {t: [] for t in PRUNED_TABLES}
            try:
                await self._transaction(partition, pending.epoch, pending.checkpoint, rows)
            except StoreUnavailable:
                for table, kept in rows.items():  # kept for the next try, oldest first
                    pending.rows[table][:0] = kept
                raise
            except Fenced:
                self._pending.pop(partition, None)
                raise

    async def _transaction(self, partition: int, epoch: int, checkpoint: int,
                           rows: dict[str, list[Any]]) -> None:
        conn = await self._connection()
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    "UPDATE partition_leases SET checkpoint = %s WHERE partition = %s AND epoch = %s",
                    (checkpoint, partition, epoch))
                if cur.rowcount != 1:
                    raise Fenced(f"partition {partition}: epoch {epoch} is no longer current")
                async with conn.cursor() as writes:
                    for table, batch in rows.items():
                        if batch:
                            getter = _GETTERS[table]
                            await writes.executemany(_INSERTS[table], [getter(r) for r in batch])
        except psycopg.OperationalError as exc:
            self.store_up = False
            await conn.close()
            raise StoreUnavailable(str(exc)) from exc

    # -- snapshots, fenced like the rows (`gateway/snapshots.py` writes through these) -------

    async def write_snapshots(self, rows: Sequence[SnapshotRow]) -> None:
        """Each owned partition's snapshots in one transaction under its epoch; others dropped.

        An instance that lost a partition (frozen, fenced) must not replace the new
        owner's snapshots with a state whose later events it never stored.
        """
        sql = SNAPSHOT_UPSERT.replace("?", "%s")
        if not rows:
            return
        oldest = min(r.through for r in rows)
        for partition, mine in self._by_partition([r.home for r in rows], oldest).items():
            wanted = set(mine)
            params = [(r.home, r.engine, r.routine, r.through, r.state) for r in rows if r.home in wanted]
            await self._fenced_statements(partition, [(sql, params)])

    async def confirm_snapshots(self, homes: Sequence[str], through: datetime) -> None:
        sql = "UPDATE home_snapshots SET through = %s WHERE through < %s AND home = ANY(%s)"
        for partition, mine in self._by_partition(homes, through).items():
            await self._fenced_statements(partition, [(sql, [(through, through, mine)])])

    def _by_partition(self, homes: Sequence[str], through: datetime) -> dict[int, list[str]]:
        """Homes of partitions owned since before `through`: a state captured under an
        earlier ownership (lost, then taken again) is not this ownership's to write."""
        grouped: dict[int, list[str]] = {}
        for home in homes:
            partition = partition_of(home, self.partitions)
            pending = self._pending.get(partition)
            if pending is not None and (pending.since is None or pending.since <= through):
                grouped.setdefault(partition, []).append(home)
        return grouped

    async def _fenced_statements(self, partition: int, statements: list[tuple[str, list[Any]]]) -> None:
        """Run `statements` in one transaction only while this instance's epoch is current."""
        pending = self._pending.get(partition)
        if pending is None:
            return
        async with self._lock:
            conn = await self._connection()
            try:
                async with conn.transaction():
                    cur = await conn.execute(
                        "SELECT 1 FROM partition_leases WHERE partition = %s AND epoch = %s FOR UPDATE",
                        (partition, pending.epoch))
                    if await cur.fetchone() is None:
                        log.error("partition %d: snapshots not written, epoch %d is no longer current",
                                  partition, pending.epoch)
                        return
                    async with conn.cursor() as writes:
                        for sql, params in statements:
                            await writes.executemany(sql, params)
            except psycopg.OperationalError as exc:
                self.store_up = False
                await conn.close()
                raise StoreUnavailable(str(exc)) from exc

    async def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, application_name=self.application_name)
            except psycopg.OperationalError as exc:
                self.store_up = False
                raise StoreUnavailable(str(exc)) from exc
        self.store_up = True
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


class PartitionHistory:
    """The part of the store a rebuild reads, limited to one partition's homes.

    `gateway.recovery.recover` would otherwise read every home's events of
    the window and keep the partition's: a takeover would cost in proportion
    to the whole deployment. The per-home indexes (`events_home_received`,
    `inputs_home_at`, `alert_steps_home_at`) serve these reads.
    """

    def __init__(self, url: str, homes: list[str], application_name: str) -> None:
        self.url, self.homes, self.application_name = url, homes, application_name

    async def _rows(self, table: str, since: datetime) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(
                self.url, application_name=self.application_name) as conn:
            cur = await conn.execute(_partition_select(table), (self.homes, since))
            return await cur.fetchall()

    async def steps_since(self, since: datetime) -> list[StepRow]:
        return [StepRow(*r) for r in await self._rows("alert_steps", since)]

    async def inputs_since(self, since: datetime) -> list[InputRow]:
        return [InputRow(*r) for r in await self._rows("inputs", since)]

    async def stream_events_since(self, since: datetime,
                                  chunk: int = 50_000) -> AsyncIterator[list[EventRow]]:
        async for rows in self.stream_home_events_since(self.homes, since, chunk):
            yield rows

    async def stream_home_events_since(self, homes: Sequence[str], since: datetime,
                                       chunk: int = 50_000) -> AsyncIterator[list[EventRow]]:
        conn = await psycopg.AsyncConnection.connect(self.url, application_name=self.application_name)
        async with conn, conn.transaction(), conn.cursor(name="partition_events") as cur:
            await cur.execute(_partition_select("events"), (list(homes), since))
            while rows := await cur.fetchmany(chunk):
                yield [EventRow(*r) for r in rows]

    async def stream_snapshots(self, chunk: int = 10_000) -> AsyncIterator[list[SnapshotRow]]:
        """The partition's homes' snapshots (a takeover restores only what it takes)."""
        async with await psycopg.AsyncConnection.connect(
                self.url, application_name=self.application_name) as conn:
            cur = await conn.execute(f"{SNAPSHOT_SELECT} WHERE home = ANY(%s)", (self.homes,))
            while rows := await cur.fetchmany(chunk):
                yield [SnapshotRow(*r) for r in rows]


def _partition_select(table: str) -> str:
    names = ", ".join(name for name, _ in COLUMNS[table])
    col = SINCE_COLUMN[table]
    return f"SELECT {names} FROM {table} WHERE home = ANY(%s) AND {col} >= %s ORDER BY {col}, id"
