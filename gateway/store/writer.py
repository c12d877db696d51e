"""Batched, buffered persistence that the safety path never waits on.

The runtime hands rows to `BufferedWriter.add_*` (plain method calls, no
await) and carries on deciding and alerting from memory. A background task
writes them in batches. When the database is down the rows stay in a bounded
buffer and the task retries with backoff; when it returns, everything is
written. If the buffer overflows, the oldest raw events go first (the newest
readings matter most to rebuild state; alert records are kept over events),
and every lost row is counted in `tecmon_store_dropped_total` and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.metrics import Metrics
from gateway.store.base import (
    AttemptRow,
    DeadLetterRow,
    EventRow,
    InputRow,
    StepRow,
    Store,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

WRITE_ORDER = ("inputs", "alert_steps", "notification_attempts", "dead_letters", "events")
"""Alert records first: after an outage they matter more than raw sensor events."""

LOSS_LOG_EVERY_S = 30.0
"""The first loss is logged at once; later ones are summed so a long outage does not flood the log."""

STORE_METRIC_NAMES = (
    "tecmon_store_buffered", "tecmon_store_written_total", "tecmon_store_dropped_total",
    "tecmon_store_write_errors_total", "tecmon_store_up",
)


class StoreMetrics:
    """The writer's metrics, registered once on a service's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.buffered = Gauge("tecmon_store_buffered", "Rows held in memory, waiting for the database",
                              registry=registry)
        self.written = Counter("tecmon_store_written", "Rows written to the database", ["table"],
                               registry=registry)
        self.dropped = Counter(
            "tecmon_store_dropped", "Rows lost: buffer overflow while the database was away, or refused",
            ["table", "reason"], registry=registry,
        )
        self.write_errors = Counter(
            "tecmon_store_write_errors", "Batch writes that failed and will be retried", registry=registry
        )
        self.up = Gauge("tecmon_store_up", "1 while the last write to the database succeeded",
                        registry=registry)


_REGISTERED: WeakKeyDictionary[CollectorRegistry, StoreMetrics] = WeakKeyDictionary()


def store_metrics(source: Metrics | CollectorRegistry | StoreMetrics | None) -> StoreMetrics:
    """The store metrics on this registry, created on first use (a registry refuses duplicates)."""
    if isinstance(source, StoreMetrics):
        return source
    registry = CollectorRegistry() if source is None else (
        source.registry if isinstance(source, Metrics) else source)
    if registry not in _REGISTERED:
        _REGISTERED[registry] = StoreMetrics(registry)
    return _REGISTERED[registry]


class BufferedWriter:
    """Rows in, batches out; bounded memory; every loss counted."""

    def __init__(
        self, store: Store, metrics: Metrics | CollectorRegistry | StoreMetrics | None = None, *,
        capacity: int = 500_000, flush_every_s: float = 1.0, batch: int = 5_000,
        backoff_min_s: float = 0.5, backoff_max_s: float = 30.0,
    ) -> None:
        if capacity < 1 or batch < 1:
            raise ValueError("capacity and batch must be at least 1")
        self.store = store
        self.metrics = store_metrics(metrics)
        self.capacity, self.flush_every_s, self.batch = capacity, flush_every_s, batch
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self._queues: dict[str, deque[Any]] = {table: deque() for table in WRITE_ORDER}
        self._in_flight = 0
        self.store_up = True  # False from a failed write (or open) until one succeeds
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._lost_unlogged = 0
        self._last_loss_log = -math.inf

    # -- the safety path's side: never blocks, never raises for storage reasons ------------

    def add_event(self, row: EventRow) -> bool:
        return self._add("events", row)

    def add_input(self, row: InputRow) -> bool:
        return self._add("inputs", row)

    def add_step(self, row: StepRow) -> bool:
        return self._add("alert_steps", row)

    def add_attempt(self, row: AttemptRow) -> bool:
        return self._add("notification_attempts", row)

    def add_dead_letter(self, row: DeadLetterRow) -> bool:
        return self._add("dead_letters", row)

    @property
    def buffered(self) -> int:
        """Rows not yet in the database, including the batch being written right now."""
        return sum(map(len, self._queues.values())) + self._in_flight

    def _add(self, table: str, row: Any) -> bool:
        """Queue a row; False when it had to be dropped (counted and logged)."""
        if self.buffered >= self.capacity:
            events = self._queues["events"]
            if not events:
                self._lose(table, 1, "overflow")
                return False
            events.popleft()
            self._lose("events", 1, "overflow")
        queue = self._queues[table]
        queue.append(row)  # the gauge is brought up to date by each flush, off this path
        if len(queue) >= self.batch:
            self._wake.set()
        return True

    def _lose(self, table: str, count: int, reason: str) -> None:
        self.metrics.dropped.labels(table=table, reason=reason).inc(count)
        self._lost_unlogged += count
        now = time.monotonic()
        if now - self._last_loss_log >= LOSS_LOG_EVERY_S:
            log.error("store: %d row(s) lost (%s, latest: %s); buffer holds %d of %d",
                      self._lost_unlogged, reason, table, self.buffered, self.capacity)
            self._lost_unlogged, self._last_loss_log = 0, now

    # -- the background side --------------------------------------------------------------

    async def run(self) -> None:
        """Flush batches until cancelled; back off while the database is unavailable."""
        backoff = self.backoff_min_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_every_s)
            self._wake.clear()
            try:
                ok = await self.flush_once()
            except Exception:  # a bug must not end the task that keeps the record
                log.exception("store: unexpected error while writing; will retry")
                ok = False
            if ok:
                backoff = self.backoff_min_s
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Write everything buffered (shutdown); True when nothing is left in memory."""
        backoff = self.backoff_min_s
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if await self.flush_once():
                if not self.buffered:
                    return True
                continue  # rows added during the pass
            if deadline is not None and time.monotonic() + backoff > deadline:
                log.error("store: %d row(s) still unwritten at shutdown", self.buffered)
                return False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    async def flush_once(self) -> bool:
        """One pass over every table; False if the database went away part way."""
        async with self._lock:
            if not await self._ensure_open():
                return False
            for table in WRITE_ORDER:
                # Only what was queued when the pass began: rows arriving meanwhile wait for
                # the next wake-up and go out as one full batch, not as a trickle of tiny ones.
                left = len(self._queues[table])
                while left > 0:
                    size = min(self.batch, left, len(self._queues[table]))
                    if size == 0 or not await self._flush_batch(table, size):
                        return size == 0
                    left -= size
            self.metrics.up.set(1)
            self.store_up = True
            self._report_losses()
            return True

    async def _ensure_open(self) -> bool:
        if self.store.is_open:
            return True
        try:
            await self.store.open()
        except Exception as exc:
            self._unavailable(exc)
            return False
        return True

    async def _flush_batch(self, table: str, size: int) -> bool:
        queue = self._queues[table]
        rows = [queue.popleft() for _ in range(size)]
        self._in_flight = len(rows)
        try:
            written = await self._write(table, rows)
        finally:
            self._in_flight = 0
            self.metrics.buffered.set(self.buffered)
        return written

    async def _write(self, table: str, rows: list[Any]) -> bool:
        """Write rows; those not written when the database went away go back to the queue's front.

        A chunk the database refuses (not a connection problem) is split until
        the refused row is alone; only that row is dropped, counted and logged.
        Cancelled mid-write (shutdown), the rows also go back: the transaction
        was rolled back, and `flush()` will write them.
        """
        write = self._writer(table)
        pending: list[list[Any]] = [rows]
        while pending:
            chunk = pending.pop(0)
            try:
                await write(chunk)
            except StoreUnavailable as exc:
                self._unavailable(exc)
                self._put_back(table, [chunk, *pending])
                return False
            except asyncio.CancelledError:
                self._put_back(table, [chunk, *pending])
                raise
            except Exception as exc:
                if len(chunk) > 1:
                    mid = len(chunk) // 2
                    pending[0:0] = [chunk[:mid], chunk[mid:]]
                    continue
                log.error("store: %s row refused and dropped: %s: %r", table, exc, chunk[0])
                self._lose(table, 1, "refused")
                continue
            self.metrics.written.labels(table=table).inc(len(chunk))
            self.metrics.up.set(1)
            self.store_up = True
        return True

    def _put_back(self, table: str, parts: list[list[Any]]) -> None:
        self._queues[table].extendleft(reversed([row for part in parts for row in part]))

    def _writer(self, table: str) -> Callable[[Sequence[Any]], Awaitable[None]]:
        writers: dict[str, Callable[[Sequence[Any]], Awaitable[None]]] = {
            "events": self.store.write_events, "inputs": self.store.write_inputs,
            "alert_steps": self.store.write_steps, "notification_attempts": self.store.write_attempts,
            "dead_letters": self.store.write_dead_letters,
        }
        return writers[table]

    def _unavailable(self, exc: BaseException) -> None:
        self.metrics.write_errors.inc()
        self.metrics.up.set(0)
        self.store_up = False
        log.warning("store unavailable, %d row(s) kept in memory: %s", self.buffered, exc)

    def _report_losses(self) -> None:
        if self._lost_unlogged:
            log.error("store: %d more row(s) were lost while the database was unavailable",
                      self._lost_unlogged)
            self._lost_unlogged, self._last_loss_log = 0, time.monotonic()


def prune_cutoffs(now: datetime, events_days: int, alerts_days: int) -> tuple[datetime, datetime]:
    """Raw events go after `events_days`; alert records (steps, attempts, inputs) are kept longer."""
    if events_days < 1 or alerts_days < 1:
        raise ValueError("retention must be at least one day")
    return now - timedelta(days=events_days), now - timedelta(days=alerts_days)


async def run_retention(
    store: Store, *, events_days: int = 90, alerts_days: int = 730, every_s: float = 3600.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """The retention job where the database has no retention policy of its own."""
    while True:
        try:
            deleted = await store.prune(*prune_cutoffs(now(), events_days, alerts_days))
            if any(deleted.values()):
                log.info("retention: deleted %s", deleted)
        except StoreUnavailable as exc:
            log.warning("retention: database unavailable, will try again: %s", exc)
        await asyncio.sleep(every_s)
