"""Between the MQTT sessions' sockets and the runtime: bounded inboxes and the pump.

Each session reads its socket into an `Inbox`. Past its limit (messages or
bytes) the inbox tells its session to stop reading, so TCP pushes back to the
broker, which queues within its own limits and then drops; this process never
buffers a flood without bound. The `Pump` applies the urgent inbox first, then
the bulk inbox in slices of a few milliseconds, yielding the event loop after
each slice: deadlines, the dispatcher, the API and both sockets get their turn
whatever the flood, and a press for help read from the urgent socket waits at
most one slice.

No aiomqtt here (`gateway.mqtt` owns it); the reader is anything that can stop
and start reading.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.clock import Clock
from gateway.urgent import UrgentRouter

log = logging.getLogger("tecmon.mqtt")

SLICE_S = 0.004
"""The pump applies bulk messages for at most this long before it yields the event loop."""


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    received_at: datetime
    qos: int


@dataclass(frozen=True, slots=True)
class Limits:
    """An inbox's bound: past `messages` or `bytes` its session stops reading, at half it reads again."""

    messages: int
    bytes: int


BULK_LIMITS = Limits(messages=2000, bytes=8 * 1024 * 1024)
URGENT_LIMITS = Limits(messages=500, bytes=1024 * 1024)

Raw = tuple[str, bytes, int, int]
"""(topic, payload, QoS, arrival count) as read from a session's socket."""


class Reader(Protocol):
    def start_reading(self) -> None: ...
    def stop_reading(self) -> None: ...


class Inbox:
    """A bounded FIFO between one session's socket and the pump; outlives reconnects.

    `received` counts every arrival: the urgent router uses it to tell a kept
    session's old queue from what came after a SUBACK.
    """

    def __init__(self, limits: Limits, ready: asyncio.Event) -> None:
        self.limits, self.ready = limits, ready
        self.items: deque[Raw] = deque()
        self.bytes = 0
        self.received = 0
        self.peak = 0  # the most messages it ever held
        self.pauses = 0  # how often its session stopped reading (backpressure)
        self._reader: Reader | None = None
        self._paused = False

    def __len__(self) -> int:
        return len(self.items)

    def put(self, topic: str, payload: bytes, qos: int) -> None:
        self.received += 1
        self.items.append((topic, payload, qos, self.received))
        self.bytes += len(payload)
        if len(self.items) > self.peak:
            self.peak = len(self.items)
        if not self._paused and (len(self.items) >= self.limits.messages or self.bytes >= self.limits.bytes):
            self._paused = True
            self.pauses += 1
            if self._reader is not None:
                self._reader.stop_reading()
        self.ready.set()

    def take(self) -> Raw:
        item = self.items.popleft()
        self.bytes -= len(item[1])
        if (self._paused and len(self.items) <= self.limits.messages // 2
                and self.bytes <= self.limits.bytes // 2):
            self._paused = False
            if self._reader is not None:
                self._reader.start_reading()
        return item

    def attach(self, reader: Reader | None) -> bool:
        """The session now reading into this inbox; whether it may read at once."""
        self._reader = reader
        return not self._paused


Apply = Callable[[Inbound], object]


class Pump:
    """Applies the urgent inbox's messages first and the bulk inbox's in slices, each once."""

    def __init__(self, clock: Clock, router: UrgentRouter) -> None:
        self.clock, self.router = clock, router
        self.ready = asyncio.Event()
        self.urgent = Inbox(URGENT_LIMITS, self.ready)
        self.bulk = Inbox(BULK_LIMITS, self.ready)
        self.duplicates = 0  # copies of a message already applied from the other session
        self.applied_urgent = 0

    async def run(self, apply: Apply) -> None:
        urgent, bulk = self.urgent, self.bulk
        while True:
            if not urgent.items and not bulk.items:
                self.ready.clear()
                await self.ready.wait()
            self.urgent_first(apply)
            ends = time.perf_counter() + SLICE_S
            while bulk.items and time.perf_counter() < ends:
                self._bulk(apply, min(32, len(bulk.items)))
            await asyncio.sleep(0)  # timers, the dispatcher, the API and both sockets get their turn

    def urgent_first(self, apply: Apply) -> None:
        urgent, router = self.urgent, self.router
        while urgent.items:
            topic, payload, qos, arrival = urgent.take()
            if router.from_urgent(topic, payload, arrival, time.monotonic()):
                self.applied_urgent += 1
                self._apply(apply, topic, payload, qos)
            else:
                self.duplicates += 1

    def _bulk(self, apply: Apply, count: int) -> None:
        bulk, router = self.bulk, self.router
        wanted = router.wanted
        for _ in range(count):
            topic, payload, qos, _ = bulk.take()
            if wanted and topic in wanted and not router.from_bulk(topic, payload, time.monotonic()):
                self.duplicates += 1
                continue
            self._apply(apply, topic, payload, qos)

    def _apply(self, apply: Apply, topic: str, payload: bytes, qos: int) -> None:
        """Stamped now, as it is applied: application order and recorded time agree."""
        try:
            apply(Inbound(topic, payload, self.clock.now(), qos))
        except Exception:  # one message must never stop every home's ingest
            log.exception("message on %s could not be applied", topic[:300])
