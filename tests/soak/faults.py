"""The soak's private world (broker, PostgreSQL, gateway, phone sink) and the faults done to it.

The pieces are the integration tests' own helpers (`tests.conftest`,
`tests.store_contract`, `tests.support.serve`). Each fault is recorded with
its real start and end, so the report can tell what it legitimately changed:
messages the gateway could not hear on time, deadlines that fell due while
it was down (delivered late, on recovery), history a SIGKILL took with it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from tests.conftest import Phone, PrivateBroker, start_phone
from tests.soak.publish import LivePublisher
from tests.store_contract import PrivatePostgres
from tests.support.serve import ServeProcess

KINDS = ("broker", "gateway", "postgres", "notifier")
log = logging.getLogger("tecmon.soak")


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    start: float  # Unix time
    end: float  # when the thing was back (the gateway: healthy and connected again)

    def line(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": round(self.start, 3), "end": round(self.end, 3),
                "seconds": round(self.end - self.start, 2)}


@dataclass
class World:
    broker: PrivateBroker
    postgres: PrivatePostgres
    sink: Phone
    server: ThreadingHTTPServer
    gateway: ServeProcess | None = None
    publisher: LivePublisher | None = None
    gateway_up: Callable[[], bool] = lambda: True
    ingested: Callable[[], float] = lambda: 0.0  # events the running gateway process has applied
    due_events: Callable[[float, float], int] = lambda since, until: 0  # published between two times
    process_since: float = 0.0  # when the running gateway process's messages began (its kill, or 0)
    faults: list[Fault] = field(default_factory=list)

    async def inject(self, kind: str, down_s: float) -> None:
        """One fault; a broker or gateway fault ends when the gateway has caught up with the backlog."""
        began = time.time()
        await {"broker": self._broker, "gateway": self._gateway, "postgres": self._postgres,
                "notifier": self._notifier}[kind](down_s)
        if kind in ("broker", "gateway"):
            try:
                await _until(self.caught_up, 300, "")
            except TimeoutError:  # the report's windows then end here; nothing is excused for it
                log.error("the gateway did not catch up within 300 s after the %s fault", kind)
        self.faults.append(Fault(kind, began, time.time()))
        log.info("fault %s: over in %.1f s", kind, time.time() - began)

    def caught_up(self) -> bool:
        return self.ingested() >= self.due_events(self.process_since, time.time() - 0.5)

    async def _broker(self, down_s: float) -> None:
        """Graceful: the publisher's messages are all acknowledged before it stops (persistence on)."""
        assert self.publisher is not None
        await self.publisher.pause()
        await asyncio.to_thread(self.broker.stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.broker.start)
        await _until(self.gateway_up, 60, "the gateway did not reconnect to the restarted broker")
        await self.publisher.resume()

    async def _gateway(self, down_s: float) -> None:
        assert self.gateway is not None
        await asyncio.to_thread(self.gateway.kill)
        self.process_since = time.time()
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.gateway.start)

    async def _postgres(self, down_s: float) -> None:
        await asyncio.to_thread(self.postgres.stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.postgres.start)

    async def _notifier(self, down_s: float) -> None:
        await asyncio.to_thread(self._close_sink)
        await asyncio.sleep(down_s)
        self.server = start_phone(self.sink)

    def _close_sink(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        self.broker.stop()
        self.postgres.remove()
        self._close_sink()


async def _until(condition: Callable[[], bool], seconds: float, why: str) -> None:
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise TimeoutError(why)
        await asyncio.sleep(0.1)


def schedule(seconds: float, kinds: list[str] | None, rng: random.Random) -> list[tuple[float, str]]:
    """When (seconds into publishing) each fault starts: the given kinds evenly spread, or random.

    A random schedule has every kind once per ten minutes (at least once), at
    random times in the middle 80% of the run, never two at once.
    """
    if kinds is not None:
        return [(seconds * (i + 1) / (len(kinds) + 1), kind) for i, kind in enumerate(kinds)]
    count = max(1, round(seconds / 600))
    chosen = [kind for kind in KINDS for _ in range(count)]
    rng.shuffle(chosen)
    slot = 0.8 * seconds / len(chosen)
    return [(0.1 * seconds + slot * (i + 0.2 + 0.6 * rng.random()), kind) for i, kind in enumerate(chosen)]


def down_for(kind: str, seconds: float) -> float:
    """How long each fault lasts, scaled for short runs (a notifier outage: a minute in a long one)."""
    if kind == "notifier":
        return min(60.0, max(3.0, seconds / 20))
    if kind == "postgres":
        return min(20.0, max(2.0, seconds / 40))
    if kind == "broker":
        return min(5.0, max(0.5, seconds / 100))
    return min(5.0, max(0.0, seconds / 200))  # the gateway: restarting takes a few seconds anyway


async def run_faults(world: World, plan: list[tuple[float, str]], started: float, seconds: float) -> None:
    """Inject each fault at its time (one after another: a fault waits for the last to end)."""
    for at, kind in plan:
        await asyncio.sleep(max(0.0, started + at - time.time()))
        await world.inject(kind, down_for(kind, seconds))
