"""Publishing every home's night live, on the soak's simulated clock, through broker restarts.

Each message goes out when the shared `ScaledClock` reaches its time, on one
connection (so each home's messages stay in order), QoS 1, through the
simulator's `WirePublisher`. Before the broker is restarted the publisher is
paused and waits for every PUBACK, so nothing is in flight when it stops:
whatever the broker acknowledged it holds (persistence) for the gateway's
session, and nothing is sent twice. Messages that fall due while paused go
out as soon as it resumes, late, as a bridge's backlog would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.clock import ScaledClock
from simulator.publisher import Message
from simulator.wire import WirePublisher

BATCH = 500
PING_S = 20.0


@dataclass
class LivePublisher:
    messages: Sequence[Message]  # in time order
    clock: ScaledClock
    host: str
    port: int
    not_before: datetime | None = None  # simulated: nothing goes out earlier; what is due then goes at once
    sent: int = 0
    acked: int = 0  # every message before this index has its PUBACK
    behind_s: float = 0.0  # the most a message went out after its time (real seconds, while not paused)
    _go: asyncio.Event = field(default_factory=asyncio.Event)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    _wire: WirePublisher | None = None
    _acked_before: int = 0
    _resumed_at: float = 0.0

    async def connect(self) -> None:
        self._wire = WirePublisher(window=2000)
        await self._wire.connect(self.host, self.port, f"soak-pub-{uuid.uuid4().hex[:8]}")
        self._acked_before = self.sent
        self._go.set()

    async def run(self) -> None:
        """Publish everything, each at its time; returns once the broker has acknowledged it all."""
        last_ping = time.monotonic()
        while self.sent < len(self.messages):
            if not self._go.is_set():
                self._idle.set()
                await self._go.wait()
                self._idle.clear()
            wire = self._wire
            assert wire is not None
            self.acked = self._acked_before + wire.acked
            batch = self._due()
            if batch:
                await wire.publish(batch)
                self.sent += len(batch)
            else:
                await asyncio.sleep(self._until_next())
            if time.monotonic() - last_ping > PING_S:
                await wire.ping()
                last_ping = time.monotonic()
        await self._settle()

    def _due(self) -> list[tuple[str, bytes]]:
        now, end = self.clock.now(), min(self.sent + BATCH, len(self.messages))
        batch: list[tuple[str, bytes]] = []
        if self.not_before is not None and now < self.not_before:
            return batch
        for message in self.messages[self.sent:end]:
            if message.ts > now:
                break
            batch.append((message.topic, message.payload))
        due = self.clock.real_time_of(self.messages[self.sent].ts)
        on_time = max(self._resumed_at, self.clock.anchor)  # the evening, and a backlog, are late by design
        if batch and due >= on_time:
            self.behind_s = max(self.behind_s, time.time() - due)
        return batch

    def _until_next(self) -> float:
        wait = self.clock.real_time_of(self.messages[self.sent].ts) - time.time()
        return min(max(wait, 0.001), 0.05)

    async def pause(self) -> None:
        """Stop sending and wait until the broker has acknowledged everything sent."""
        self._go.clear()
        if self.sent < len(self.messages):
            await self._idle.wait()
        await self._settle()

    async def resume(self) -> None:
        self._resumed_at = time.time()
        if self.sent < len(self.messages):
            await self.connect()

    async def _settle(self) -> None:
        wire = self._wire
        if wire is not None:
            await wire.close()
            self.acked = self._acked_before + wire.acked
            self._wire = None
